package main

// fleetScenarios are the scenarios with simulated agents.
func fleetScenarios() []scenario { return nil }

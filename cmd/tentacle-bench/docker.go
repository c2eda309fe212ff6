package main

// dockerScenarios are the scenarios with a real agent and Docker.
func dockerScenarios() []scenario { return nil }

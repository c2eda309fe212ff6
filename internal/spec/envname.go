package spec

// ValidEnvName reports whether name is a valid environment variable name:
// letters, digits and _, not starting with a digit.
func ValidEnvName(name string) bool { return envNameRE.MatchString(name) }

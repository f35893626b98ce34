// ERROR: expected '}' to close the options of pass 'canonicalize'
// ARGS: -p canonicalize{max-iterations=3
func.func private @f()

// ERROR: option 'max-iterations' of pass 'canonicalize' expects an integer, got 'many'
// ARGS: -p canonicalize{max-iterations=many}
func.func private @f()

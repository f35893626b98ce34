// ERROR: found 'secret'
// ARGS: 
func.func secret @f()

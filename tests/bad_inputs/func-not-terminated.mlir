// ERROR: must end with a terminator, not 'func.call'
// ARGS: 
func.func @f() {
  "func.call"() <{callee = @f}> : () -> ()
}

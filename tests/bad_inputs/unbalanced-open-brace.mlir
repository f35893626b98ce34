// ERROR: unexpected end of input
// ARGS: 
func.func @f() {
  "func.return"() : () -> ()

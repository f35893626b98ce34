// ERROR: a function with a body must name its arguments
// ARGS: 
func.func @f(i32) {
  "func.return"() : () -> ()
}

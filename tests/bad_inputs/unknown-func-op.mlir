// ERROR: unknown operation 'func.frobnicate': dialect 'func' has no such op
// ARGS: 
func.func @f() {
  "func.frobnicate"() : () -> ()
  "func.return"() : () -> ()
}

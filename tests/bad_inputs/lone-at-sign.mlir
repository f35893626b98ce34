// ERROR: unexpected character '@'
"test.op"() {a = @} : () -> ()

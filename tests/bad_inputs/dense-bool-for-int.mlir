// ERROR: boolean value not valid for element type i8
"test.op"() {x = dense<true> : tensor<1xi8>} : () -> ()

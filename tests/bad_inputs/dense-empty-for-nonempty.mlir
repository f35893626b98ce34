// ERROR: empty dense literal for non-empty type
"test.op"() {x = dense<> : tensor<2xf32>} : () -> ()

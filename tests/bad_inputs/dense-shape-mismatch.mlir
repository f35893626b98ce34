// ERROR: dense literal of shape 3 does not match type tensor<2xi32>
"test.op"() {x = dense<[1, 2, 3]> : tensor<2xi32>} : () -> ()

// ERROR: dense literal has rows of different lengths
"test.op"() {x = dense<[[1], [2, 3]]> : tensor<2x2xi32>} : () -> ()

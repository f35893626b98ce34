// ERROR: dense elements need a statically shaped tensor or vector type
"test.op"() {x = dense<1> : tensor<?xi32>} : () -> ()

// ERROR: invalid hexadecimal in dense literal
"test.op"() {x = dense<"0xZZ"> : tensor<1xi8>} : () -> ()

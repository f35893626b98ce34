// ERROR: resource 'r' is not valid hexadecimal
"test.op"() {x = dense_resource<r> : tensor<1xi8>} : () -> ()
{-#
  dialect_resources: { builtin: { r: "0xZZ" } }
#-}

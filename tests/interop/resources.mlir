// Dense resources: blobs kept out of the IR text, referenced by name (one of them twice).
"builtin.module"() ({
  %w = "test.constant"() {value = dense_resource<weights> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %b = "test.constant"() {value = dense_resource<bias> : tensor<2xi8>} : () -> tensor<2xi8>
  "test.pair"() {both = [dense_resource<weights> : tensor<4xf32>, dense_resource<bias> : tensor<2xi8>]} : () -> ()
}) : () -> ()

{-#
  dialect_resources: {
    builtin: {
      weights: "0x040000000000803F000000400000404000008040",
      bias: "0x01000000FF7F"
    }
  }
#-}

// ERROR: found 'foo'
"test.op"() : () -> tensor<2xfoo>

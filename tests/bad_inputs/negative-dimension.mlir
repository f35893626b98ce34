// ERROR: found '-1'
"test.op"() : () -> tensor<-1xf32>

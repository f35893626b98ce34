// ERROR: found 'xf32'
"test.op"() : () -> vector<xf32>

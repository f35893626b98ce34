// ERROR: unexpected end of input
"test.op"()

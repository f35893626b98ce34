// ERROR: use of value '%a' expects different type than prior uses: 'f32' vs 'i32'
%a = "test.op"() : () -> i32
"test.use"(%a) : (f32) -> ()

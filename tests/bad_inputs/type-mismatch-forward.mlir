// ERROR: expects different type than prior uses
"test.use"(%later) : (f32) -> ()
%later = "test.op"() : () -> i32

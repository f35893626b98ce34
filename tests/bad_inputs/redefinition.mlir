// ERROR: redefinition of SSA value '%a'
%a = "test.op"() : () -> i32
%a = "test.op"() : () -> i32

// The func dialect in generic form: definitions, declarations, attributes of arguments and
// results, calls and returns.
"builtin.module"() <{sym_name = "funcs"}> ({
  "func.func"() <{sym_name = "add", function_type = (i32, i32) -> i32}> ({
  ^bb0(%x: i32, %y: i32):
    %s = "test.addi"(%x, %y) : (i32, i32) -> i32
    "func.return"(%s) : (i32) -> ()
  }) : () -> ()
  "func.func"() <{sym_name = "external", function_type = () -> (), sym_visibility = "private"}> ({
  }) : () -> ()
  "func.func"() <{sym_name = "annotated", function_type = (f32, f32) -> (f32, f32), arg_attrs = [{test.noalias}, {}], res_attrs = [{}, {test.name = "second"}]}> ({
  ^bb0(%p: f32, %q: f32):
    "func.return"(%q, %p) : (f32, f32) -> ()
  }) {test.discardable = 1 : i32} : () -> ()
  "func.func"() <{sym_name = "caller", function_type = () -> i32}> ({
    %c = "test.constant"() {value = 2 : i32} : () -> i32
    %r = "func.call"(%c, %c) <{callee = @add}> : (i32, i32) -> i32
    "func.call"() <{callee = @external}> : () -> ()
    "func.return"(%r) : (i32) -> ()
  }) : () -> ()
  "func.func"() <{sym_name = "branches", function_type = (i1) -> i8}> ({
  ^bb0(%cond: i1):
    "test.cond_br"(%cond)[^yes, ^no] : (i1) -> ()
  ^yes:
    %one = "test.constant"() {value = 1 : i8} : () -> i8
    "func.return"(%one) : (i8) -> ()
  ^no:
    %zero = "test.constant"() {value = 0 : i8} : () -> i8
    "func.return"(%zero) : (i8) -> ()
  }) : () -> ()
}) : () -> ()

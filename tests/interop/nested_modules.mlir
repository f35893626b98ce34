// Modules inside modules, symbol names and module attributes.
"builtin.module"() <{sym_name = "outer"}> ({
  "builtin.module"() <{sym_name = "inner"}> ({
    "func.func"() <{sym_name = "f", function_type = () -> (), sym_visibility = "nested"}> ({
      "func.return"() : () -> ()
    }) : () -> ()
  }) {test.target = "dpu"} : () -> ()
  "builtin.module"() ({
  ^bb0:
  }) : () -> ()
}) {test.version = 2 : i32} : () -> ()

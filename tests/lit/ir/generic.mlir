// RUN: xir-opt --print-op-generic %s | filecheck %s
// RUN: xir-opt --print-op-generic %s | xir-opt | filecheck %s --check-prefix=PRETTY

// --print-op-generic prints every op, module and functions included, in the generic form,
// and that form reads back to the same IR.

// CHECK:      "builtin.module"() <{sym_name = "m"}> ({
// CHECK-NEXT:   "func.func"() <{sym_name = "decl", function_type = (i32) -> i32, sym_visibility = "private", arg_attrs = [{test.a}]}> ({
// CHECK-NEXT:   }) : () -> ()
// CHECK-NEXT:   "func.func"() <{sym_name = "f", function_type = (i32) -> i32}> ({
// CHECK-NEXT:   ^bb0(%x: i32):
// CHECK-NEXT:     %r = "func.call"(%x) <{callee = @decl}> : (i32) -> i32
// CHECK-NEXT:     "func.return"(%r) : (i32) -> ()
// CHECK-NEXT:   }) : () -> ()
// CHECK-NEXT: }) {test.flag} : () -> ()

// PRETTY:      builtin.module @m attributes {test.flag} {
// PRETTY-NEXT:   func.func private @decl(i32 {test.a}) -> i32
// PRETTY-NEXT:   func.func @f(%x: i32) -> i32 {
module @m attributes {test.flag} {
  func.func private @decl(i32 {test.a}) -> i32
  func.func @f(%x: i32) -> i32 {
    %r = "func.call"(%x) <{callee = @decl}> : (i32) -> i32
    "func.return"(%r) : (i32) -> ()
  }
}

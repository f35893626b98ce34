// RUN: xir-opt %s | filecheck %s
// RUN: xir-opt %s | xir-opt | filecheck %s

// The pretty forms of builtin.module and func.func.

// CHECK:      builtin.module @named attributes {dlti.flag, version = 2 : i32} {
module @named attributes {dlti.flag, version = 2 : i32} {
  // A declaration has no body; visibility comes before the name.
  // CHECK-NEXT:   func.func private @decl(i32, f32) -> i32
  func.func private @decl(i32, f32) -> i32

  // CHECK-NEXT:   func.func nested @no_results()
  func.func nested @no_results()

  // Argument and result attributes.
  // CHECK-NEXT:   func.func public @attrs(%x: i32 {test.arg = 1}, %y: f32) -> (i32 {test.res}, f32) attributes {inline} {
  func.func public @attrs(%x: i32 {test.arg = 1}, %y: f32) -> (i32 {test.res}, f32) attributes {inline} {
    // CHECK-NEXT:     "func.return"(%x, %y) : (i32, f32) -> ()
    "func.return"(%x, %y) : (i32, f32) -> ()
  // CHECK-NEXT:   }
  }

  // A single result needs no parentheses; a function-typed result does.
  // CHECK-NEXT:   func.func @single(%a: tensor<2xf32>) -> tensor<2xf32> {
  func.func @single(%a: tensor<2xf32>) -> (tensor<2xf32>) {
    // CHECK-NEXT:     %r = "func.call"(%a) <{callee = @single}> : (tensor<2xf32>) -> tensor<2xf32>
    %r = "func.call"(%a) <{callee = @single}> : (tensor<2xf32>) -> tensor<2xf32>
    "func.return"(%r) : (tensor<2xf32>) -> ()
  }

  // CHECK:        func.func @returns_fn() -> ((i32) -> i32)
  func.func @returns_fn() -> ((i32) -> i32)

  // The generic form of a function is read as well, and printed pretty.
  // CHECK-NEXT:   func.func private @generic(%arg0: i8) -> i8 {
  // CHECK-NEXT:     "func.return"(%arg0) : (i8) -> ()
  // CHECK-NEXT:   }
  "func.func"() <{sym_name = "generic", function_type = (i8) -> i8, sym_visibility = "private"}> ({
  ^bb0(%arg0: i8):
    "func.return"(%arg0) : (i8) -> ()
  }) : () -> ()
}
// CHECK-NEXT: }

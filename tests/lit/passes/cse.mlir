// RUN: xir-opt-tst %s -p cse --split-input-file | filecheck %s

// Equal pure ops are computed once; commutative operands match in either order.
// CHECK-LABEL: func.func @equal(%a: i32, %b: i32) -> i32 {
// CHECK-NEXT:    %s = "tst.add"(%a, %b) : (i32, i32) -> i32
// CHECK-NEXT:    %p = "tst.mul"(%s, %s) : (i32, i32) -> i32
// CHECK-NEXT:    "func.return"(%p) : (i32) -> ()
func.func @equal(%a: i32, %b: i32) -> i32 {
  %s = "tst.add"(%a, %b) : (i32, i32) -> i32
  %t = "tst.add"(%b, %a) : (i32, i32) -> i32
  %p = "tst.mul"(%s, %t) : (i32, i32) -> i32
  "func.return"(%p) : (i32) -> ()
}

// -----

// Constants with different values, and ops with side effects, are not merged.
// CHECK-LABEL: func.func @different(%a: i32) -> i32 {
// CHECK-NEXT:    %c1 = "tst.constant"() <{value = 1 : i32}> : () -> i32
// CHECK-NEXT:    %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
// CHECK-NEXT:    %e1 = "tst.effect"(%a) : (i32) -> i32
// CHECK-NEXT:    %e2 = "tst.effect"(%a) : (i32) -> i32
func.func @different(%a: i32) -> i32 {
  %c1 = "tst.constant"() <{value = 1 : i32}> : () -> i32
  %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
  %e1 = "tst.effect"(%a) : (i32) -> i32
  %e2 = "tst.effect"(%a) : (i32) -> i32
  %s = "tst.add"(%c1, %c2) : (i32, i32) -> i32
  %t = "tst.add"(%e1, %e2) : (i32, i32) -> i32
  %u = "tst.add"(%s, %t) : (i32, i32) -> i32
  "func.return"(%u) : (i32) -> ()
}

// -----

// An op inside a nested region reuses an equal op of the enclosing block.
// CHECK-LABEL: func.func @nested(%a: i32) {
// CHECK-NEXT:    %s = "tst.add"(%a, %a) : (i32, i32) -> i32
// CHECK-NEXT:    "tst.scope"() ({
// CHECK-NEXT:      %e = "tst.effect"(%s) : (i32) -> i32
func.func @nested(%a: i32) {
  %s = "tst.add"(%a, %a) : (i32, i32) -> i32
  "tst.scope"() ({
    %inner = "tst.add"(%a, %a) : (i32, i32) -> i32
    %e = "tst.effect"(%inner) : (i32) -> i32
  }) : () -> ()
  "func.return"() : () -> ()
}

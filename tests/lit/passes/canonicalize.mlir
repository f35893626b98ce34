// RUN: xir-opt-tst %s -p canonicalize --split-input-file | filecheck %s

// Constants fold through add; add(0, x) becomes x once the constant is moved to the right.
// CHECK-LABEL: func.func @fold(%x: i32) -> i32 {
// CHECK-NEXT:    %0 = "tst.constant"() <{value = 5 : i32}> : () -> i32
// CHECK-NEXT:    %z = "tst.mul"(%x, %0) : (i32, i32) -> i32
// CHECK-NEXT:    "func.return"(%z) : (i32) -> ()
// CHECK-NEXT:  }
func.func @fold(%x: i32) -> i32 {
  %c2 = "tst.constant"() <{value = 2 : i32}> : () -> i32
  %c3 = "tst.constant"() <{value = 3 : i32}> : () -> i32
  %c0 = "tst.constant"() <{value = 0 : i32}> : () -> i32
  %s = "tst.add"(%c2, %c3) : (i32, i32) -> i32
  %y = "tst.add"(%c0, %x) : (i32, i32) -> i32
  %z = "tst.mul"(%y, %s) : (i32, i32) -> i32
  "func.return"(%z) : (i32) -> ()
}

// -----

// mul(x, 1) folds to x; ops with side effects stay even when their results are unused.
// CHECK-LABEL: func.func @keep_effects(%x: i64) -> i64 {
// CHECK-NEXT:    %e = "tst.effect"(%x) : (i64) -> i64
// CHECK-NEXT:    "func.return"(%x) : (i64) -> ()
func.func @keep_effects(%x: i64) -> i64 {
  %one = "tst.constant"() <{value = 1 : i64}> : () -> i64
  %m = "tst.mul"(%x, %one) : (i64, i64) -> i64
  %e = "tst.effect"(%m) : (i64) -> i64
  "func.return"(%m) : (i64) -> ()
}

// -----

// Nothing to do: the IR comes back unchanged.
// CHECK-LABEL: func.func @unchanged(%a: i32, %b: i32) -> i32 {
// CHECK-NEXT:    %s = "tst.add"(%a, %b) : (i32, i32) -> i32
// CHECK-NEXT:    "func.return"(%s) : (i32) -> ()
func.func @unchanged(%a: i32, %b: i32) -> i32 {
  %s = "tst.add"(%a, %b) : (i32, i32) -> i32
  "func.return"(%s) : (i32) -> ()
}

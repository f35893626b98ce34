// RUN: xir-opt-tst %s -p dce | filecheck %s

// Unused pure ops go, to a fixed point (%b dies once %c has gone); effects and uses stay.
// CHECK-LABEL: func.func @dead(%x: i32) -> i32 {
// CHECK-NEXT:    %e = "tst.effect"(%x) : (i32) -> i32
// CHECK-NEXT:    %used = "tst.add"(%x, %x) : (i32, i32) -> i32
// CHECK-NEXT:    "func.return"(%used) : (i32) -> ()
// CHECK-NEXT:  }
func.func @dead(%x: i32) -> i32 {
  %a = "tst.constant"() <{value = 7 : i32}> : () -> i32
  %b = "tst.add"(%x, %a) : (i32, i32) -> i32
  %c = "tst.mul"(%b, %b) : (i32, i32) -> i32
  %e = "tst.effect"(%x) : (i32) -> i32
  %used = "tst.add"(%x, %x) : (i32, i32) -> i32
  "func.return"(%used) : (i32) -> ()
}

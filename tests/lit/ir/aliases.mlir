// RUN: xir-opt --allow-unregistered-dialect %s | filecheck %s

// Type and attribute aliases are expanded where they are used.

#shape = [1, 3, 32, 32]
#sym = @weights
#nested = {inner = #shape}
!act = tensor<1x3x32x32xf32>
!q = !quant.uniform<i8:f32, 0.5>

// CHECK:      func.func @f(%x: tensor<1x3x32x32xf32>) -> tensor<1x3x32x32xf32> {
// CHECK-NEXT:   %y = "test.op"(%x) {shape = [1, 3, 32, 32], ref = @weights, n = {inner = [1, 3, 32, 32]}, t = !quant.uniform<i8:f32, 0.5>} : (tensor<1x3x32x32xf32>) -> tensor<1x3x32x32xf32>
func.func @f(%x: !act) -> !act {
  %y = "test.op"(%x) {shape = #shape, ref = #sym, n = #nested, t = !q} : (!act) -> !act
  "func.return"(%y) : (!act) -> ()
}

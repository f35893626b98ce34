// RUN: xir-opt %s -p canonicalize | filecheck %s

// Layout round trips cancel and reshape chains fold: only %r, a real reshape, is left.
// CHECK-LABEL: func.func @folds
// CHECK-NEXT:    %p = "dpu.pool_fix"(%v) {type = "max", kernel = [2, 2], fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x1x1x3xi8>
// CHECK-NEXT:    %r = "dpu.reshape"(%p) {shape = [1, 3], fix_point = 1} : (tensor<1x1x1x3xi8>) -> tensor<1x3xi8>
// CHECK-NEXT:    "func.return"(%x, %r) : (tensor<1x3x2x2xi8>, tensor<1x3xi8>) -> ()
func.func @folds(%x: tensor<1x3x2x2xi8>, %v: tensor<1x2x2x3xi8>) -> (tensor<1x3x2x2xi8>, tensor<1x3xi8>) {
  %0 = "dpu.to_nhwc"(%x) {fix_point = 1} : (tensor<1x3x2x2xi8>) -> tensor<1x2x2x3xi8>
  %1 = "dpu.to_nchw"(%0) {fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x3x2x2xi8>
  %2 = "dpu.reshape"(%v) {shape = [1, 12], fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x12xi8>
  %3 = "dpu.reshape"(%2) {shape = [1, 2, 2, 3], fix_point = 1} : (tensor<1x12xi8>) -> tensor<1x2x2x3xi8>
  %p = "dpu.pool_fix"(%3) {type = "max", kernel = [2, 2], fix_point = 1} : (tensor<1x2x2x3xi8>) -> tensor<1x1x1x3xi8>
  %r = "dpu.reshape"(%p) {shape = [1, 3], fix_point = 1} : (tensor<1x1x1x3xi8>) -> tensor<1x3xi8>
  "func.return"(%1, %r) : (tensor<1x3x2x2xi8>, tensor<1x3xi8>) -> ()
}

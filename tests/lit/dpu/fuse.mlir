// RUN: xir-opt %s -p fuse --split-input-file | filecheck %s

// A zero pad before a conv becomes its pad; a relu after it, at its output fix point, its
// nonlinear; the weights turn OHWI; the feature map enters as NHWC and leaves as NCHW.
// CHECK-LABEL: func.func @pad_conv_relu
// CHECK-NEXT:    %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi8>
// CHECK-NEXT:    %0 = "quant.constant"() {value = {{.*}} : tensor<3x3x3x2xi8>, fix_point = 5} : () -> tensor<3x3x3x2xi8> loc("conv1")
// CHECK-NEXT:    %1 = "dpu.to_nhwc"(%q) {fix_point = 4} : (tensor<1x2x4x4xi8>) -> tensor<1x4x4x2xi8> loc("conv1")
// CHECK-NEXT:    %r = "dpu.conv2d_fix"(%1, %0) {kernel = [3, 3], stride = [1, 1], dilation = [1, 1], pad = [1, 1, 1, 1], nonlinear = "relu", input_fp = 4, weight_fp = 5, output_fp = 3, shift_cut = 6} : (tensor<1x4x4x2xi8>, tensor<3x3x3x2xi8>) -> tensor<1x4x4x3xi8> loc("conv1")
// CHECK-NEXT:    %[[R:.*]] = "dpu.to_nchw"(%r) {fix_point = 3} : (tensor<1x4x4x3xi8>) -> tensor<1x3x4x4xi8> loc("conv1")
// CHECK-NEXT:    %y = "quant.dequantize"(%[[R]]) {fix_point = 3} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xf32>
// CHECK-NEXT:    "func.return"(%y) : (tensor<1x3x4x4xf32>) -> ()
func.func @pad_conv_relu(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi8>
  %p = "quant.pad"(%q) {pads = [0, 0, 1, 1, 0, 0, 1, 1], fix_point = 4} : (tensor<1x2x4x4xi8>) -> tensor<1x2x6x6xi8>
  %w = "quant.constant"() {value = dense<[[[[1, 2, -3], [4, -5, 6], [7, 8, -9]], [[-1, 0, 1], [2, 3, -4], [5, -6, 7]]], [[[2, 2, 2], [-2, -2, -2], [1, 1, 1]], [[0, 1, 0], [1, -8, 1], [0, 1, 0]]], [[[9, 0, 0], [0, 9, 0], [0, 0, 9]], [[-3, -3, -3], [3, 3, 3], [0, 0, 0]]]]> : tensor<3x2x3x3xi8>, fix_point = 5} : () -> tensor<3x2x3x3xi8>
  %c = "quant.conv2d"(%p, %w) {input_fp = 4, weight_fp = 5, output_fp = 3} : (tensor<1x2x6x6xi8>, tensor<3x2x3x3xi8>) -> tensor<1x3x4x4xi8> loc("conv1")
  %r = "quant.relu"(%c) {input_fp = 3, output_fp = 3} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xi8>
  %y = "quant.dequantize"(%r) {fix_point = 3} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xf32>
  "func.return"(%y) : (tensor<1x3x4x4xf32>) -> ()
}

// -----

// Layer order: a relu that changes the fix point would round twice, so it stays a quant op;
// an op the inspector put on the CPU (xir.device = "CPU") stays too, and the pair of
// conversions between two DPU ops cancels (no to_nchw/to_nhwc between %c and %a).
// CHECK-LABEL: func.func @order_and_cpu
// CHECK:         %c = "dpu.conv2d_fix"({{.*}}) {kernel = [1, 1], {{.*}}nonlinear = "none", input_fp = 4, weight_fp = 5, output_fp = 3, shift_cut = 6}
// CHECK-NEXT:    %a = "dpu.eltwise_fix"(%c, %c) {type = "add", nonlinear = "none", input_fps = [3, 3], output_fp = 2, shift_read = [0, 0], shift_write = 1}
// CHECK-NEXT:    %[[N:.*]] = "dpu.to_nchw"(%a) {fix_point = 2}
// CHECK-NEXT:    %r = "quant.relu"(%[[N]]) {input_fp = 2, output_fp = 1}
// CHECK-NEXT:    %m = "quant.max_pool2d"(%r) {kernel_shape = [2, 2], strides = [2, 2], fix_point = 1, xir.device = "CPU"}
func.func @order_and_cpu(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x2x2xf32> {
  %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi8>
  %w = "quant.constant"() {value = dense<[[[[1]], [[2]]], [[[-3]], [[4]]], [[[5]], [[-6]]]]> : tensor<3x2x1x1xi8>, fix_point = 5} : () -> tensor<3x2x1x1xi8>
  %c = "quant.conv2d"(%q, %w) {input_fp = 4, weight_fp = 5, output_fp = 3} : (tensor<1x2x4x4xi8>, tensor<3x2x1x1xi8>) -> tensor<1x3x4x4xi8>
  %a = "quant.add"(%c, %c) {input_fps = [3, 3], output_fp = 2} : (tensor<1x3x4x4xi8>, tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xi8>
  %r = "quant.relu"(%a) {input_fp = 2, output_fp = 1} : (tensor<1x3x4x4xi8>) -> tensor<1x3x4x4xi8>
  %m = "quant.max_pool2d"(%r) {kernel_shape = [2, 2], strides = [2, 2], fix_point = 1, xir.device = "CPU"} : (tensor<1x3x4x4xi8>) -> tensor<1x3x2x2xi8>
  %y = "quant.dequantize"(%m) {fix_point = 1} : (tensor<1x3x2x2xi8>) -> tensor<1x3x2x2xf32>
  "func.return"(%y) : (tensor<1x3x2x2xf32>) -> ()
}

// -----

// A dense after the flatten of a 2×2 map is a conv with a 2×2 kernel: the weights (M, C·H·W)
// are read as (M, C, H, W), then OHWI, so the NCHW flatten order is kept; the result is
// reshaped back to N×M.
// CHECK-LABEL: func.func @dense_after_flatten
// CHECK:         %0 = "dpu.to_nhwc"(%q) {fix_point = 4}
// CHECK-NEXT:    %1 = "quant.constant"() {value = dense<{{\[\[\[\[}}1, 5], [2, 6]], {{\[\[}}3, 7], [4, 8]]]]> : tensor<1x2x2x2xi8>, fix_point = 6}
// CHECK-NEXT:    %2 = "dpu.conv2d_fix"(%0, %1) {kernel = [2, 2], nonlinear = "none", input_fp = 4, weight_fp = 6, output_fp = 5, shift_cut = 5}
// CHECK-NEXT:    %d = "dpu.reshape"(%2) {shape = [1, 1], fix_point = 5} : (tensor<1x1x1x1xi8>) -> tensor<1x1xi8>
// CHECK-NEXT:    %y = "quant.dequantize"(%d) {fix_point = 5}
func.func @dense_after_flatten(%x: tensor<1x2x2x2xf32>) -> tensor<1x1xf32> {
  %q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xi8>
  %f = "quant.flatten"(%q) {fix_point = 4} : (tensor<1x2x2x2xi8>) -> tensor<1x8xi8>
  %w = "quant.constant"() {value = dense<[[1, 2, 3, 4, 5, 6, 7, 8]]> : tensor<1x8xi8>, fix_point = 6} : () -> tensor<1x8xi8>
  %d = "quant.dense"(%f, %w) {input_fp = 4, weight_fp = 6, output_fp = 5} : (tensor<1x8xi8>, tensor<1x8xi8>) -> tensor<1x1xi8>
  %y = "quant.dequantize"(%d) {fix_point = 5} : (tensor<1x1xi8>) -> tensor<1x1xf32>
  "func.return"(%y) : (tensor<1x1xf32>) -> ()
}

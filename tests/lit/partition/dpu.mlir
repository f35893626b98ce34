// RUN: xir-opt -p partition %s 2>%t.err | filecheck %s
// RUN: filecheck %s --check-prefix=SUMMARY < %t.err

// A fused module (dpu dialect, NHWC int8) as the fuse pass leaves it. Devices come from the op
// names: dpu.* on the DPU, except the layout glue dpu.to_nhwc / dpu.to_nchw, which goes with
// quant.quantize / quant.dequantize; other ops on the CPU, or where xir.device says (the leaky
// relu, which the inspector put on the CPU). conv1 -> lrelu (CPU) -> conv2 -> add(conv1, .) is a
// detour through the CPU, so add starts a second DPU subgraph. Every layout change next to a
// CPU op goes into that CPU subgraph; the quantize and to_nhwc of the model input, next to no
// CPU op, stay in @main. Each DPU subgraph reads and writes NHWC int8 only.

// SUMMARY: Total device subgraph number 5, DPU subgraph number 2, CPU subgraph number 2

// CHECK-LABEL: func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
// CHECK-NEXT:    %x_q = "quant.quantize"(%x)
// CHECK-NEXT:    %x_h = "dpu.to_nhwc"(%x_q)
// CHECK-NEXT:    %r = "func.call"(%x_h) <{callee = @subgraph_0_dpu}> : (tensor<1x4x4x1xi8>) -> tensor<1x4x4x2xi8>
// CHECK-NEXT:    %l_h = "func.call"(%r) <{callee = @subgraph_1_cpu}> : (tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8>
// CHECK-NEXT:    %s = "func.call"(%l_h, %r) <{callee = @subgraph_2_dpu}> : (tensor<1x4x4x2xi8>, tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8>
// CHECK-NEXT:    %p = "func.call"(%s) <{callee = @subgraph_3_cpu}> : (tensor<1x4x4x2xi8>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:    "func.return"(%p)
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_0_dpu(%x_h: tensor<1x4x4x1xi8>) -> tensor<1x4x4x2xi8> attributes {xir.device = "DPU"} {
// CHECK-NEXT:    %w1 = "quant.constant"()
// CHECK-NEXT:    %b1 = "quant.constant"()
// CHECK-NEXT:    %r = "dpu.conv2d_fix"(%x_h, %w1, %b1)
// CHECK-NEXT:    "func.return"(%r)
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_1_cpu(%r: tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8> attributes {xir.device = "CPU"} {
// CHECK-NEXT:    %r_c = "dpu.to_nchw"(%r)
// CHECK-NEXT:    %l = "quant.leaky_relu"(%r_c)
// CHECK-NEXT:    %l_h = "dpu.to_nhwc"(%l)
// CHECK-NEXT:    "func.return"(%l_h)
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_2_dpu(%l_h: tensor<1x4x4x2xi8>, %r: tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8> attributes {xir.device = "DPU"} {
// CHECK-NEXT:    %w2 = "quant.constant"()
// CHECK-NEXT:    %c2 = "dpu.conv2d_fix"(%l_h, %w2)
// CHECK-NEXT:    %s = "dpu.eltwise_fix"(%r, %c2)
// CHECK-NEXT:    "func.return"(%s)
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_3_cpu(%s: tensor<1x4x4x2xi8>) -> tensor<1x2x4x4xf32> attributes {xir.device = "CPU"} {
// CHECK-NEXT:    %s_c = "dpu.to_nchw"(%s)
// CHECK-NEXT:    %s_f = "quant.dequantize"(%s_c)
// CHECK-NEXT:    %p = "graph.softmax"(%s_f)
// CHECK-NEXT:    "func.return"(%p)
// CHECK-NEXT:  }

builtin.module {
  func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
    %x_q = "quant.quantize"(%x) {fix_point = 5, round_mode = "STD_ROUND"} : (tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xi8> loc("x_q")
    %b1 = "quant.constant"() {value = dense<[0, 68]> : tensor<2xi8>, fix_point = 11} : () -> tensor<2xi8> loc("conv1")
    %w1 = "quant.constant"() {value = dense<[[[[1], [2], [3]], [[-4], [5], [-6]], [[7], [8], [-9]]], [[[9], [-8], [7]], [[6], [5], [4]], [[-3], [2], [1]]]]> : tensor<2x3x3x1xi8>, fix_point = 7} : () -> tensor<2x3x3x1xi8> loc("conv1")
    %x_h = "dpu.to_nhwc"(%x_q) {fix_point = 5} : (tensor<1x1x4x4xi8>) -> tensor<1x4x4x1xi8> loc("conv1")
    %r = "dpu.conv2d_fix"(%x_h, %w1, %b1) {kernel = [3, 3], stride = [1, 1], dilation = [1, 1], pad = [1, 1, 1, 1], nonlinear = "relu", input_fp = 5, weight_fp = 7, bias_fp = 11, output_fp = 5, shift_cut = 7, shift_bias = 1} : (tensor<1x4x4x1xi8>, tensor<2x3x3x1xi8>, tensor<2xi8>) -> tensor<1x4x4x2xi8> loc("conv1")
    %r_c = "dpu.to_nchw"(%r) {fix_point = 5} : (tensor<1x4x4x2xi8>) -> tensor<1x2x4x4xi8> loc("lrelu")
    %l = "quant.leaky_relu"(%r_c) {input_fp = 5, output_fp = 5, xir.device = "CPU"} : (tensor<1x2x4x4xi8>) -> tensor<1x2x4x4xi8> loc("lrelu")
    %l_h = "dpu.to_nhwc"(%l) {fix_point = 5} : (tensor<1x2x4x4xi8>) -> tensor<1x4x4x2xi8> loc("conv2")
    %w2 = "quant.constant"() {value = dense<[[[[63, -36]]], [[[-126, 18]]]]> : tensor<2x1x1x2xi8>, fix_point = 7} : () -> tensor<2x1x1x2xi8> loc("conv2")
    %c2 = "dpu.conv2d_fix"(%l_h, %w2) {kernel = [1, 1], stride = [1, 1], dilation = [1, 1], pad = [0, 0, 0, 0], nonlinear = "none", input_fp = 5, weight_fp = 7, output_fp = 5, shift_cut = 7} : (tensor<1x4x4x2xi8>, tensor<2x1x1x2xi8>) -> tensor<1x4x4x2xi8> loc("conv2")
    %s = "dpu.eltwise_fix"(%r, %c2) {type = "add", nonlinear = "none", input_fps = [5, 5], output_fp = 4, shift_read = [0, 0], shift_write = 1} : (tensor<1x4x4x2xi8>, tensor<1x4x4x2xi8>) -> tensor<1x4x4x2xi8> loc("add")
    %s_c = "dpu.to_nchw"(%s) {fix_point = 4} : (tensor<1x4x4x2xi8>) -> tensor<1x2x4x4xi8> loc("add")
    %s_f = "quant.dequantize"(%s_c) {fix_point = 4} : (tensor<1x2x4x4xi8>) -> tensor<1x2x4x4xf32> loc("s_f")
    %p = "graph.softmax"(%s_f) {axis = 1} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc("softmax")
    "func.return"(%p) : (tensor<1x2x4x4xf32>) -> ()
  }
}

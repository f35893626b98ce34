// RUN: xir-opt -p partition %s 2>%t.err | filecheck %s
// RUN: filecheck %s --check-prefix=SUMMARY < %t.err
// RUN: xir-opt -p partition,partition %s 2>/dev/null | xir-opt -p partition 2>&1 >/dev/null | filecheck %s --check-prefix=SUMMARY

// The partition pass outlines each DPU and CPU region of @main into a private function with
// xir.device set; @main keeps its signature, calls the subgraphs in data-flow order, and runs
// the glue that belongs to no CPU region (here the quantize/dequantize of the model input,
// which goes straight to the DPU). relu1 -> tanh (CPU) -> conv2 -> add(relu1, .) is a detour
// through the CPU: add cannot join relu1's subgraph (that subgraph would wait for itself), so
// conv2 and add start a second DPU subgraph. The glue before softmax joins its CPU subgraph.
// The constant w is copied into both subgraphs that read it. Subgraphs are numbered in call
// order. A second run changes nothing and prints the same line.

// SUMMARY: Total device subgraph number 5, DPU subgraph number 2, CPU subgraph number 2
// SUMMARY-NOT: Total

// CHECK-LABEL: func.func @main(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) {
// CHECK-NEXT:    %x_q = "quant.quantize"(%x) {fix_point = 4}
// CHECK-NEXT:    %x_f = "quant.dequantize"(%x_q) {fix_point = 4}
// CHECK-NEXT:    %r = "func.call"(%x_f) <{callee = @subgraph_0_dpu}> : (tensor<1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    %t = "func.call"(%r) <{callee = @subgraph_1_cpu}> : (tensor<1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    %s = "func.call"(%t, %r) <{callee = @subgraph_2_dpu}> : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    %p = "func.call"(%s) <{callee = @subgraph_3_cpu}> : (tensor<1x4xf32>) -> tensor<1x4xf32>
// CHECK-NEXT:    "func.return"(%p, %r) : (tensor<1x4xf32>, tensor<1x4xf32>) -> ()
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_0_dpu(%x_f: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {xir.device = "DPU"} {
// CHECK-NEXT:    %w = "graph.constant"() {value = dense<0.5> : tensor<1x4xf32>}
// CHECK-NEXT:    %a = "graph.mul"(%x_f, %w)
// CHECK-NEXT:    %r = "graph.relu"(%a)
// CHECK-NEXT:    "func.return"(%r) : (tensor<1x4xf32>) -> ()
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_1_cpu(%r: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {xir.device = "CPU"} {
// CHECK-NEXT:    %t = "graph.tanh"(%r)
// CHECK-NEXT:    "func.return"(%t) : (tensor<1x4xf32>) -> ()
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_2_dpu(%t: tensor<1x4xf32>, %r: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {xir.device = "DPU"} {
// CHECK-NEXT:    %w = "graph.constant"()
// CHECK-NEXT:    %b = "graph.mul"(%t, %w)
// CHECK-NEXT:    %s = "graph.add"(%r, %b)
// CHECK-NEXT:    "func.return"(%s) : (tensor<1x4xf32>) -> ()
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func private @subgraph_3_cpu(%s: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {xir.device = "CPU"} {
// CHECK-NEXT:    %s_q = "quant.quantize"(%s) {fix_point = 4}
// CHECK-NEXT:    %s_f = "quant.dequantize"(%s_q) {fix_point = 4}
// CHECK-NEXT:    %p = "graph.softmax"(%s_f) {axis = 1}
// CHECK-NEXT:    "func.return"(%p) : (tensor<1x4xf32>) -> ()
// CHECK-NEXT:  }

builtin.module {
  func.func @main(%x: tensor<1x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) {
    %w = "graph.constant"() {value = dense<0.5> : tensor<1x4xf32>} : () -> tensor<1x4xf32> loc("w")
    %x_q = "quant.quantize"(%x) {fix_point = 4} : (tensor<1x4xf32>) -> tensor<1x4xi8> loc("x_q")
    %x_f = "quant.dequantize"(%x_q) {fix_point = 4} : (tensor<1x4xi8>) -> tensor<1x4xf32> loc("x_f")
    %a = "graph.mul"(%x_f, %w) {xir.device = "DPU"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("conv1")
    %r = "graph.relu"(%a) {xir.device = "DPU"} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("relu1")
    %t = "graph.tanh"(%r) {xir.device = "CPU"} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("tanh")
    %b = "graph.mul"(%t, %w) {xir.device = "DPU"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("conv2")
    %s = "graph.add"(%r, %b) {xir.device = "DPU"} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32> loc("add")
    %s_q = "quant.quantize"(%s) {fix_point = 4} : (tensor<1x4xf32>) -> tensor<1x4xi8> loc("s_q")
    %s_f = "quant.dequantize"(%s_q) {fix_point = 4} : (tensor<1x4xi8>) -> tensor<1x4xf32> loc("s_f")
    %p = "graph.softmax"(%s_f) {axis = 1} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("softmax")
    "func.return"(%p, %r) : (tensor<1x4xf32>, tensor<1x4xf32>) -> ()
  }
}

// RUN: xir-opt -p 'inspect{target=B4096}' %s | filecheck %s
// RUN: xir-opt -p 'inspect{target=DPUCAHX8H_ISA2}' %s | filecheck %s --check-prefix=ISA2

// The inspect pass marks each op of @main with the device it runs on (xir.device), why not on the
// DPU (xir.reasons) and the DPU op it is fused into (xir.fused_into). Weights are left alone.
//
// pad -> conv1 -> bn1 -> relu1 is one DPU op: the zero pad folds into conv1's padding, bn1 into its
// weights, relu1 into its output stage.
// CHECK-LABEL: func.func @main
// CHECK:       "graph.pad"{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}
// CHECK:       "graph.constant"() {value = dense<0.5> : tensor<4x2x3x3xf32>} : () -> tensor<4x2x3x3xf32> loc("conv1.weight")
// CHECK-NEXT:  "graph.conv2d"{{.*}}group = 1, xir.device = "DPU"}
// CHECK:       "graph.batch_norm"(%c1{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}
// CHECK-NEXT:  "graph.relu"{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}
// ISA2:        "graph.pad"{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}
// ISA2:        "graph.batch_norm"(%c1{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}
// ISA2-NEXT:   "graph.relu"{{.*}}xir.device = "DPU", xir.fused_into = "conv1"}

// conv2 -> relu2 -> bn2: the activation fuses, the BatchNorm after it does not. On B4096 the ALU
// runs it as a depthwise convolution; DPUCAHX8H has no depthwise engine, so it goes to the CPU.
// CHECK:       "graph.relu"(%c2) {xir.device = "DPU", xir.fused_into = "conv2"}
// CHECK-NEXT:  "graph.batch_norm"(%r2{{.*}}xir.device = "DPU"}
// ISA2:        "graph.relu"(%c2) {xir.device = "DPU", xir.fused_into = "conv2"}
// ISA2-NEXT:   "graph.batch_norm"(%r2{{.*}}xir.device = "CPU", xir.reasons = ["bn2: a BatchNorm that does not follow a convolution would run as a depthwise convolution, and DPUCAHX8H_ISA2 has no depthwise engine", "bn2: does not fold into 'conv2' because it follows the activation 'relu2'; move the BatchNorm before the activation"]}

// A group-2 convolution, a leaky relu with alpha 0.1, a flatten fed by the CPU, a softmax.
// CHECK:       "graph.conv2d"(%b2{{.*}}xir.device = "CPU", xir.reasons = ["conv3: 'group'(2) is not supported: a DPU convolution has group 1 or is depthwise (group = input channels = output channels; here 4 in, 4 out)"]}
// CHECK-NEXT:  "graph.leaky_relu"{{.*}}xir.device = "CPU", xir.reasons = ["leaky: Its alpha is 0.1, but DPU only supports 0.1015625; set alpha to 26/256"]}
// CHECK-NEXT:  "graph.flatten"{{.*}}xir.device = "CPU", xir.reasons = ["flatten: The input of flatten is not on DPU (it comes from 'leaky')"]}
// CHECK-NEXT:  "graph.softmax"{{.*}}xir.device = "CPU", xir.reasons = ["softmax: softmax runs on the CPU on DPUCZDX8G_ISA1_B4096 (no DPU engine computes it)"]}
// CHECK-NOT:   xir.
// ISA2:        "graph.softmax"{{.*}}xir.reasons = ["softmax: softmax runs on the CPU on DPUCAHX8H_ISA2 (no DPU engine computes it)"]}

builtin.module {
  func.func @main(%x: tensor<1x2x2x2xf32>) -> tensor<1x16xf32> {
    %pad = "graph.pad"(%x) {pads = [0, 0, 1, 1, 0, 0, 1, 1], mode = "constant", value = 0.0 : f32} : (tensor<1x2x2x2xf32>) -> tensor<1x2x4x4xf32> loc("pad")
    %w1 = "graph.constant"() {value = dense<0.5> : tensor<4x2x3x3xf32>} : () -> tensor<4x2x3x3xf32> loc("conv1.weight")
    %c1 = "graph.conv2d"(%pad, %w1) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1} : (tensor<1x2x4x4xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x2x2xf32> loc("conv1")
    %one = "graph.constant"() {value = dense<1.0> : tensor<4xf32>} : () -> tensor<4xf32> loc("one")
    %zero = "graph.constant"() {value = dense<0.0> : tensor<4xf32>} : () -> tensor<4xf32> loc("zero")
    %b1 = "graph.batch_norm"(%c1, %one, %zero, %zero, %one) {epsilon = 1.0e-05 : f32} : (tensor<1x4x2x2xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x2x2xf32> loc("bn1")
    %r1 = "graph.relu"(%b1) : (tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> loc("relu1")
    %w2 = "graph.constant"() {value = dense<0.5> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32> loc("conv2.weight")
    %c2 = "graph.conv2d"(%r1, %w2) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1} : (tensor<1x4x2x2xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x2x2xf32> loc("conv2")
    %r2 = "graph.relu"(%c2) : (tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> loc("relu2")
    %b2 = "graph.batch_norm"(%r2, %one, %zero, %zero, %one) {epsilon = 1.0e-05 : f32} : (tensor<1x4x2x2xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x2x2xf32> loc("bn2")
    %w3 = "graph.constant"() {value = dense<0.5> : tensor<4x2x1x1xf32>} : () -> tensor<4x2x1x1xf32> loc("conv3.weight")
    %c3 = "graph.conv2d"(%b2, %w3) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 2} : (tensor<1x4x2x2xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x2x2xf32> loc("conv3")
    %l = "graph.leaky_relu"(%c3) {alpha = 0.1 : f32} : (tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> loc("leaky")
    %f = "graph.flatten"(%l) {axis = 1} : (tensor<1x4x2x2xf32>) -> tensor<1x16xf32> loc("flatten")
    %s = "graph.softmax"(%f) {axis = 1} : (tensor<1x16xf32>) -> tensor<1x16xf32> loc("softmax")
    "func.return"(%s) : (tensor<1x16xf32>) -> ()
  }
}

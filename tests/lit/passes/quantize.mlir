// RUN: xir-opt %s -p 'fold-bn,quantize{calib=%S/Inputs/quantize-calib.npz}' | filecheck %s
// RUN: xir-opt %s -p 'fold-bn,quantize{calib=%S/Inputs/quantize-calib.npz}' -o %t.opt.xir
// RUN: xir quantize %s --calib %S/Inputs/quantize-calib.npz -o %t.quantize.xir
// RUN: diff %t.opt.xir %t.quantize.xir
// RUN: not xir-opt %s -p 'quantize' 2>&1 | filecheck %s --check-prefix=NO-CALIB
// RUN: not xir-opt %s -p 'quantize{calib=%t.missing.npz}' 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not xir-opt %s -p 'fold-bn,quantize{calib=%S/Inputs/quantize-calib.npz method=mse}' 2>&1 | filecheck %s --check-prefix=METHOD

// The quantize pass calibrates on the samples of `calib` and lowers the float function to the
// quant dialect, as `xir quantize` does: its output file is the same, byte for byte (on this model
// every option of the pass changes that file). conv1 takes bn1 into its weights and bias and relu1
// into its output stage; weights and biases go to int8 at fix points of their own (conv1's
// weights as a resource); the input is quantized and the output dequantized, so @main keeps its
// signature. Inputs/quantize-calib.npz holds x = np.random.default_rng(0).standard_normal((100,
// 1, 4, 4)).astype(np.float32), 100 samples so that calibration does not warn.
// CHECK-LABEL: func.func @main(%x: tensor<?x1x4x4xf32>) -> tensor<?x2x4x4xf32> {
// CHECK-NEXT:    %x_q = "quant.quantize"(%x) {fix_point = [[IN:[0-9]+]], round_mode = "STD_ROUND"} : (tensor<?x1x4x4xf32>) -> tensor<?x1x4x4xi8>
// CHECK-NEXT:    %[[W1:[0-9]+]] = "quant.constant"() {value = dense_resource<conv1_qw> : tensor<2x1x3x3xi8>, fix_point = [[W1FP:[0-9]+]]} : () -> tensor<2x1x3x3xi8> loc("conv1")
// CHECK-NEXT:    %[[B1:[0-9]+]] = "quant.constant"() {value = dense<[{{-?[0-9]+}}, {{-?[0-9]+}}]> : tensor<2xi8>, fix_point = [[B1FP:[0-9]+]]} : () -> tensor<2xi8> loc("conv1")
// CHECK-NEXT:    %r = "quant.conv2d"(%x_q, %[[W1]], %[[B1]]) {strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], group = 1, input_fp = [[IN]], weight_fp = [[W1FP]], bias_fp = [[B1FP]], output_fp = [[MID:[0-9]+]], activation = "relu"} : (tensor<?x1x4x4xi8>, tensor<2x1x3x3xi8>, tensor<2xi8>) -> tensor<?x2x4x4xi8> loc("conv1")
// CHECK-NEXT:    %[[W2:[0-9]+]] = "quant.constant"() {value = dense<{{.*}}> : tensor<2x2x1x1xi8>, fix_point = [[W2FP:[0-9]+]]} : () -> tensor<2x2x1x1xi8> loc("conv2")
// CHECK-NEXT:    %z_q = "quant.conv2d"(%r, %[[W2]]) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1, input_fp = [[MID]], weight_fp = [[W2FP]], output_fp = [[OUT:[0-9]+]], activation = "none"} : (tensor<?x2x4x4xi8>, tensor<2x2x1x1xi8>) -> tensor<?x2x4x4xi8> loc("conv2")
// CHECK-NEXT:    %z = "quant.dequantize"(%z_q) {fix_point = [[OUT]]} : (tensor<?x2x4x4xi8>) -> tensor<?x2x4x4xf32>
// CHECK-NEXT:    "func.return"(%z) : (tensor<?x2x4x4xf32>) -> ()
// CHECK-NEXT:  }
// CHECK:       builtin: {
// CHECK-NEXT:    conv1_qw: "0x04000000{{[0-9A-F]+}}"
// CHECK-NEXT:  }

// NO-CALIB: <pipeline>:1:1: error: invalid options for pass 'quantize': option 'calib' is required: the calibration .npz archive, as in quantize{calib=calib.npz}

// MISSING: quantize.mlir: error: cannot read calibration data '{{.*}}.missing.npz': no such file

// METHOD: <pipeline>:1:9: error: invalid options for pass 'quantize': unknown calibration method 'mse' (expects one of diffs, nonoverflow, percentile)

builtin.module {
  func.func @main(%x: tensor<?x1x4x4xf32>) -> tensor<?x2x4x4xf32> {
    %w = "graph.constant"() {value = dense<[[[[0.25, -0.5, 0.125], [0.5, 1.0, -0.25], [0.0, 0.75, -1.0]]], [[[-0.5, 0.25, 0.5], [1.0, -0.75, 0.25], [0.125, 0.5, 0.0]]]]> : tensor<2x1x3x3xf32>} : () -> tensor<2x1x3x3xf32> loc("conv1.weight")
    %b = "graph.constant"() {value = dense<[0.1, -0.2]> : tensor<2xf32>} : () -> tensor<2xf32> loc("conv1.bias")
    %y = "graph.conv2d"(%x, %w, %b) {strides = [1, 1], pads = [1, 1, 1, 1], dilations = [1, 1], group = 1} : (tensor<?x1x4x4xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<?x2x4x4xf32> loc("conv1")
    %gamma = "graph.constant"() {value = dense<[0.5, 2.0]> : tensor<2xf32>} : () -> tensor<2xf32> loc("bn1.gamma")
    %beta = "graph.constant"() {value = dense<[0.0, 0.25]> : tensor<2xf32>} : () -> tensor<2xf32> loc("bn1.beta")
    %mean = "graph.constant"() {value = dense<[0.1, -0.1]> : tensor<2xf32>} : () -> tensor<2xf32> loc("bn1.mean")
    %var = "graph.constant"() {value = dense<[1.0, 4.0]> : tensor<2xf32>} : () -> tensor<2xf32> loc("bn1.var")
    %n = "graph.batch_norm"(%y, %gamma, %beta, %mean, %var) {epsilon = 1.0e-05 : f32} : (tensor<?x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<?x2x4x4xf32> loc("bn1")
    %r = "graph.relu"(%n) : (tensor<?x2x4x4xf32>) -> tensor<?x2x4x4xf32> loc("relu1")
    %w2 = "graph.constant"() {value = dense<[[[[0.75]], [[-0.0625]]], [[[-1.5]], [[0.03125]]]]> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32> loc("conv2.weight")
    %z = "graph.conv2d"(%r, %w2) {strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1} : (tensor<?x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<?x2x4x4xf32> loc("conv2")
    "func.return"(%z) : (tensor<?x2x4x4xf32>) -> ()
  }
}

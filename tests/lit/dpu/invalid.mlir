// RUN: xir-opt --split-input-file --verify-diagnostics %s

// Every shift must agree with the fix points and lie in the DPU's range (reference/dpu.md §3).

func.func @cut_out_of_range(%x: tensor<1x2x1x2xi8>, %w: tensor<1x1x1x2xi8>) -> tensor<1x2x1x1xi8> {
  // expected-error @+1 {{'dpu.conv2d_fix' op shift_cut = input_fp + weight_fp - output_fp = 17 is outside the DPU's range [0, 16]}}
  %y = "dpu.conv2d_fix"(%x, %w) {kernel = [1, 1], input_fp = 2, weight_fp = 3, output_fp = -12, shift_cut = 17} : (tensor<1x2x1x2xi8>, tensor<1x1x1x2xi8>) -> tensor<1x2x1x1xi8>
  "func.return"(%y) : (tensor<1x2x1x1xi8>) -> ()
}

// -----

func.func @cut_out_of_step(%x: tensor<1x2x1x2xi8>, %w: tensor<1x1x1x2xi8>) -> tensor<1x2x1x1xi8> {
  // expected-error @+1 {{'dpu.conv2d_fix' op shift_cut = 4 does not match its fix points: input_fp + weight_fp - output_fp = 2}}
  %y = "dpu.conv2d_fix"(%x, %w) {kernel = [1, 1], input_fp = 2, weight_fp = 3, output_fp = 3, shift_cut = 4} : (tensor<1x2x1x2xi8>, tensor<1x1x1x2xi8>) -> tensor<1x2x1x1xi8>
  "func.return"(%y) : (tensor<1x2x1x1xi8>) -> ()
}

// -----

func.func @read_out_of_range(%a: tensor<1x2x2x3xi8>, %b: tensor<1x2x2x3xi8>) -> tensor<1x2x2x3xi8> {
  // expected-error @+1 {{'dpu.eltwise_fix' op shift_read #1 = input_fps[k] - min(input_fps) = 16 is outside the DPU's range [0, 15]}}
  %y = "dpu.eltwise_fix"(%a, %b) {type = "add", input_fps = [0, 16], output_fp = 0, shift_read = [0, 16], shift_write = 0} : (tensor<1x2x2x3xi8>, tensor<1x2x2x3xi8>) -> tensor<1x2x2x3xi8>
  "func.return"(%y) : (tensor<1x2x2x3xi8>) -> ()
}

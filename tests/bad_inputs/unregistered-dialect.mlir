// ERROR: operation 'torch.relu' belongs to unregistered dialect 'torch' (use --allow-unregistered-dialect)
// ARGS: 
%r = "torch.relu"() : () -> tensor<4xf32>

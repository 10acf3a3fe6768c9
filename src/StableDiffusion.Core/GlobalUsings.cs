// ONNX Runtime's Tensors namespace has its own Tensor<T>; take only the element-type enum from it.
global using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

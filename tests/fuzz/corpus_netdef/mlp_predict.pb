
mlp_predict
data
W1
b1fc1fc1"FC
fc1relu1relu1"Relu
relu1
W2
b2fc2fc2"FC
fc2probsoftmax"Softmax:data:W1:b1:W2:b2Bprob
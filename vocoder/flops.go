package vocoder

// InferenceFLOPs returns the floating-point operations (multiply and add
// counted separately) of synthesising frames mel frames: the upsampling
// transposed convolution and, per audio column and flow, the WN network
// (start, dilated input convs, conditioning 1x1, res/skip, end) and the
// inverse 1x1 convolution. Elementwise work (gates, coupling) is left out:
// it is a few percent at most.
func (c Config) InferenceFLOPs(frames int) float64 {
	C, L, K := float64(c.WN.Channels), c.WN.Layers, float64(c.WN.KernelSize)
	cols := float64(frames * c.Mel.Hop / c.Group)
	perCol := 0.0
	for k := 0; k < c.Flows; k++ {
		ch := float64(c.FlowChannels(k))
		half := ch / 2
		macs := C*half + 2*half*C + ch*ch // start, end, 1x1 inverse
		for i := 0; i < L; i++ {
			macs += 2 * C * C * K                    // dilated input conv
			macs += 2 * C * float64(c.NMels*c.Group) // this layer's conditioning
			if i < L-1 {
				macs += 2 * C * C // res and skip
			} else {
				macs += C * C // skip only
			}
		}
		perCol += 2 * macs
	}
	return perCol*cols + c.upsampleFLOPs(frames)
}

// upsampleFLOPs returns the floating-point operations of upsampling frames
// mel frames with the transposed convolution.
func (c Config) upsampleFLOPs(frames int) float64 {
	return 2 * float64(c.NMels*c.NMels*c.UpsampleKernel) * float64(frames)
}

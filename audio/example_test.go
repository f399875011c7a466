package audio_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/glowvoc/glowvoc/audio"
)

func Example() {
	var buf bytes.Buffer
	clip := audio.Clip{Samples: []float32{0, 0.5, -0.25, 1}, SampleRate: 22050}
	if err := audio.Encode(&buf, clip, audio.PCM16); err != nil {
		log.Fatal(err)
	}
	back, err := audio.Decode(&buf)
	if err != nil {
		log.Fatal(err)
	}
	// 1 is clipped to the largest 16-bit value, 32767/32768.
	fmt.Println(back.SampleRate, back.Samples)
	// Output: 22050 [0 0.5 -0.25 0.9999695]
}

func ExampleStreamWriter() {
	var body bytes.Buffer // an http.ResponseWriter in a server
	sw, err := audio.NewStreamWriter(&body, 22050, audio.Float32)
	if err != nil {
		log.Fatal(err)
	}
	for _, chunk := range [][]float32{{0.1, 0.2}, {0.3}} {
		if err := sw.Write(chunk); err != nil {
			log.Fatal(err)
		}
	}
	// The stream has no sizes in its header; Decode reads it to the end.
	clip, err := audio.Decode(&body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(clip.Samples)
	// Output: [0.1 0.2 0.3]
}

package loopback

import "testing"

func TestIs(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9092": true, "127.5.0.1:9092": true, "[::1]:9092": true, "localhost:9092": true, "localhost": true, "::1": true,
		":9092": false, "0.0.0.0:9092": false, "10.0.0.1:9092": false, "kafka.example:9092": false, "": false,
	} {
		if got := Is(addr); got != want {
			t.Errorf("Is(%q) = %v, want %v", addr, got, want)
		}
	}
}

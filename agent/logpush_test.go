package agent

import (
	"maps"
	"testing"
)

func TestAckBatchKeepsTheLatestOffsetPerTask(t *testing.T) {
	b := newAckBatch()
	b.add("a", 64)
	b.add("b", 10)
	b.add("a", 128) // arrived while the first was not saved yet
	select {
	case <-b.ready:
	default:
		t.Fatal("no signal after add")
	}
	if got, want := b.take(), map[string]uint64{"a": 128, "b": 10}; !maps.Equal(got, want) {
		t.Errorf("take = %v, want %v", got, want)
	}
	if got := b.take(); len(got) != 0 {
		t.Errorf("second take = %v, want nothing", got)
	}
}

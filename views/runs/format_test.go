package runs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/runs"
)

func TestProgressWords(t *testing.T) {
	for _, c := range []struct {
		run                runs.Run
		text, short, words string
	}{
		{runs.Run{Status: runs.RunRunning, StepsTotal: 3, StepsDone: 1}, "1 of 3 steps", "1/3", "1 of 3 steps done"},
		{runs.Run{Status: runs.RunSucceeded, StepsTotal: 1, StepsDone: 1}, "1 of 1 step", "1/1", "1 of 1 step done"},
		{runs.Run{Status: runs.RunFailed, StepsTotal: 3, StepsDone: 3, StepsFailed: 1, StepsSkipped: 1},
			"1 of 3 succeeded, 1 failed, 1 skipped", "1/3, 1 failed, 1 skipped", "1 of 3 succeeded, 1 failed, 1 skipped"},
		{runs.Run{Status: runs.RunCancelled, StepsTotal: 2, StepsDone: 2, StepsSkipped: 2},
			"0 of 2 succeeded, 2 cancelled", "0/2, 2 cancelled", "0 of 2 succeeded, 2 cancelled"},
	} {
		require.Equal(t, c.text, progressText(c.run))
		require.Equal(t, c.short, progressShort(c.run))
		require.Equal(t, c.words, progressWords(c.run))
	}
}

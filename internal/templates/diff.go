package templates

import "strings"

// DiffSpecs returns the line difference between two specs' exported JSON.
func DiffSpecs(older, newer Spec) []DiffLine {
	return diffLines(splitLines(string(older.Export())), splitLines(string(newer.Export())))
}

// splitLines splits text into lines, without the last line's newline.
func splitLines(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// maxDiffCells bounds the longest-common-subsequence table (4 bytes a
// cell): a change larger than this is shown as its old lines removed and its
// new lines added, instead of matched line by line.
const maxDiffCells = 4 << 20

// diffLines is a longest-common-subsequence line diff: unchanged lines,
// then each change as its removed lines followed by its added lines.
// Common leading and trailing lines are matched first, so that the table
// only covers what changed; a change too large for the table (maxDiffCells)
// is one block.
func diffLines(a, b []string) []DiffLine {
	prefix := 0
	for prefix < len(a) && prefix < len(b) && a[prefix] == b[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(a)-prefix && suffix < len(b)-prefix && a[len(a)-1-suffix] == b[len(b)-1-suffix] {
		suffix++
	}
	midA, midB := a[prefix:len(a)-suffix], b[prefix:len(b)-suffix]

	// lcs[i][j] is the length of the LCS of midA[i:] and midB[j:].
	n, m := len(midA), len(midB)
	block := (n+1)*(m+1) > maxDiffCells
	if block {
		n, m = 0, 0 // no table: the change is shown below as one block
	}
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if midA[i] == midB[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}

	out := make([]DiffLine, 0, len(a)+len(b)-prefix-suffix)
	oldNo, newNo := 0, 0
	same := func(text string) {
		oldNo++
		newNo++
		out = append(out, DiffLine{Op: ' ', Text: text, OldNo: oldNo, NewNo: newNo})
	}
	for _, line := range a[:prefix] {
		same(line)
	}
	var removed, added []DiffLine
	flush := func() {
		out = append(append(out, removed...), added...)
		removed, added = removed[:0], added[:0]
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && midA[i] == midB[j]:
			flush()
			same(midA[i])
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			newNo++
			added = append(added, DiffLine{Op: '+', Text: midB[j], NewNo: newNo})
			j++
		default:
			oldNo++
			removed = append(removed, DiffLine{Op: '-', Text: midA[i], OldNo: oldNo})
			i++
		}
	}
	if block {
		for _, line := range midA {
			oldNo++
			out = append(out, DiffLine{Op: '-', Text: line, OldNo: oldNo})
		}
		for _, line := range midB {
			newNo++
			out = append(out, DiffLine{Op: '+', Text: line, NewNo: newNo})
		}
	}
	flush()
	for _, line := range a[len(a)-suffix:] {
		same(line)
	}
	return out
}

package auth

import "fmt"

func minLengthHint(n int) string {
	return fmt.Sprintf("At least %d characters. A few unrelated words make a strong one.", n)
}

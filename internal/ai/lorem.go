package ai

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// loremWords is the vocabulary of the lorem model.
var loremWords = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing
elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad
minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo
consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat
nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui
officia deserunt mollit anim id est laborum`)

// loremLength is the number of words the lorem model writes.
const loremLength = 50

// lorem returns fifty pseudo-Latin words in sentences, chosen by a hash of
// prompt, so that the same prompt always gets the same text.
func lorem(prompt string) string {
	h := fnv.New64a()
	h.Write([]byte(prompt))
	seed := h.Sum64()
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	var b strings.Builder
	left := loremLength
	for left > 0 {
		n := min(4+rng.IntN(9), left) // a sentence of 4 to 12 words
		left -= n
		for i := range n {
			w := loremWords[rng.IntN(len(loremWords))]
			if i == 0 {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				r, size := utf8.DecodeRuneInString(w)
				b.WriteRune(unicode.ToUpper(r))
				b.WriteString(w[size:])
				continue
			}
			b.WriteByte(' ')
			b.WriteString(w)
		}
		b.WriteByte('.')
	}
	return b.String()
}

package torchfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits on a single pickle. They are far above what a checkpoint needs (the
// pickle of a 12-flow WaveGlow training checkpoint is well under 1 MiB and
// 200 000 opcodes) and keep the memory an adversarial pickle can make the
// unpickler allocate to a few hundred MiB.
const (
	maxPickleBytes = 64 << 20 // bytes of one pickle
	maxPickleOps   = 1 << 21  // opcodes executed
	maxStackItems  = 1 << 20  // values on the unpickler stack, all marks included
	maxMarkDepth   = 1 << 12  // nested MARKs
	maxMemo        = 1 << 20  // distinct memo slots
	maxGlobalName  = 256      // bytes of a string kept for STACK_GLOBAL checks
)

// Pickle opcodes (see Python's Lib/pickletools.py).
const (
	opMark            = '('
	opStop            = '.'
	opPop             = '0'
	opPopMark         = '1'
	opDup             = '2'
	opFloat           = 'F'
	opInt             = 'I'
	opBinInt          = 'J'
	opBinInt1         = 'K'
	opLong            = 'L'
	opBinInt2         = 'M'
	opNone            = 'N'
	opPersID          = 'P'
	opBinPersID       = 'Q'
	opReduce          = 'R'
	opString          = 'S'
	opBinString       = 'T'
	opShortBinString  = 'U'
	opUnicode         = 'V'
	opBinUnicode      = 'X'
	opAppend          = 'a'
	opBuild           = 'b'
	opGlobal          = 'c'
	opDict            = 'd'
	opEmptyDict       = '}'
	opAppends         = 'e'
	opGet             = 'g'
	opBinGet          = 'h'
	opInst            = 'i'
	opLongBinGet      = 'j'
	opList            = 'l'
	opEmptyList       = ']'
	opObj             = 'o'
	opPut             = 'p'
	opBinPut          = 'q'
	opLongBinPut      = 'r'
	opSetItem         = 's'
	opTuple           = 't'
	opEmptyTuple      = ')'
	opSetItems        = 'u'
	opBinFloat        = 'G'
	opProto           = 0x80
	opNewObj          = 0x81
	opExt1            = 0x82
	opExt2            = 0x83
	opExt4            = 0x84
	opTuple1          = 0x85
	opTuple2          = 0x86
	opTuple3          = 0x87
	opNewTrue         = 0x88
	opNewFalse        = 0x89
	opLong1           = 0x8a
	opLong4           = 0x8b
	opBinBytes        = 'B'
	opShortBinBytes   = 'C'
	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opBinBytes8       = 0x8e
	opEmptySet        = 0x8f
	opAddItems        = 0x90
	opFrozenSet       = 0x91
	opNewObjEx        = 0x92
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95
	opByteArray8      = 0x96
	opNextBuffer      = 0x97
	opReadOnlyBuffer  = 0x98
)

// scanValue is what the validator knows about a value on the simulated stack:
// whether it is a string and, if so, (the start of) its content.
type scanValue struct {
	str   string
	isStr bool
}

// scanner validates one pickle before gopickle executes it. It walks the
// opcode stream the way Python's pickletools does and simulates the stack,
// marks and memo, so that the unpickler only ever sees a pickle that
//
//   - uses supported opcodes only (no bytes objects, extension registry,
//     out-of-band buffers or the INST/OBJ instantiation opcodes);
//   - has every length argument within the bytes actually present, so that no
//     allocation is sized by an unchecked number;
//   - never underflows the stack or a mark, builds dicts from key/value pairs
//     and only reads memo slots it wrote;
//   - references allow-listed globals only (for GLOBAL and STACK_GLOBAL alike,
//     including the few classes gopickle resolves without asking FindClass);
//   - stays within the limits above.
//
// gopickle panics or allocates unbounded memory on several malformed inputs
// that this rules out (odd SETITEMS, empty LONG1, huge length prefixes, bytes
// used as dict keys).
type scanner struct {
	r      *bufio.Reader
	left   int64 // bytes that may still be read
	capped bool  // left was cut to maxPickleBytes
	out    bytes.Buffer
	stack  []scanValue
	marks  []int
	memo   map[int]scanValue
	ops    int
}

// scanPickle reads one pickle from r, which holds at most avail bytes, and
// returns its bytes (up to and including STOP) once they have been validated.
// Bytes after STOP are not consumed from the caller's point of view: the
// length of the result is the length of the pickle.
func scanPickle(r io.Reader, avail int64) ([]byte, error) {
	s := &scanner{
		r:    bufio.NewReader(r),
		left: avail,
		memo: make(map[int]scanValue),
	}
	if s.left > maxPickleBytes {
		s.left, s.capped = maxPickleBytes, true
	}
	if err := s.run(); err != nil {
		return nil, fmt.Errorf("pickle at byte %d: %w", s.out.Len(), err)
	}
	return s.out.Bytes(), nil
}

// exhausted reports that the pickle has not ended within the bytes allowed.
func (s *scanner) exhausted() error {
	if s.capped {
		return fmt.Errorf("%w: pickle larger than %d bytes", ErrLimit, maxPickleBytes)
	}
	return fmt.Errorf("%w: truncated pickle", ErrFormat)
}

// tooLong reports an argument of n bytes that does not fit in what is left.
func (s *scanner) tooLong(n uint64) error {
	if s.capped {
		return s.exhausted()
	}
	return fmt.Errorf("%w: argument of %d bytes, only %d bytes left", ErrFormat, n, s.left)
}

// readErr converts an early end of the input into ErrFormat.
func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: truncated pickle", ErrFormat)
	}
	return err
}

// read consumes n bytes and returns them (valid until the next read). Memory
// grows with the bytes actually read, never with the number n alone.
func (s *scanner) read(n int64) ([]byte, error) {
	if n > s.left {
		return nil, s.tooLong(uint64(n))
	}
	start := s.out.Len()
	if n <= 16 {
		for range n {
			b, err := s.r.ReadByte()
			if err != nil {
				return nil, readErr(err)
			}
			s.out.WriteByte(b)
		}
	} else if _, err := io.CopyN(&s.out, s.r, n); err != nil {
		return nil, readErr(err)
	}
	s.left -= n
	return s.out.Bytes()[start:], nil
}

func (s *scanner) byte1() (byte, error) {
	b, err := s.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (s *scanner) uint(n int) (uint64, error) {
	b, err := s.read(int64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line reads up to and including a newline and returns the text before it.
func (s *scanner) line() (string, error) {
	start := s.out.Len()
	for {
		b, err := s.byte1()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			text := s.out.Bytes()[start : s.out.Len()-1]
			return string(text), nil
		}
	}
}

func (s *scanner) push(v scanValue) error {
	if len(s.stack) >= maxStackItems {
		return fmt.Errorf("%w: more than %d values on the pickle stack", ErrLimit, maxStackItems)
	}
	s.stack = append(s.stack, v)
	return nil
}

// avail is the number of values above the topmost mark.
func (s *scanner) avail() int {
	if len(s.marks) == 0 {
		return len(s.stack)
	}
	return len(s.stack) - s.marks[len(s.marks)-1]
}

func (s *scanner) pop(n int) ([]scanValue, error) {
	if s.avail() < n {
		return nil, fmt.Errorf("%w: pickle stack underflow", ErrFormat)
	}
	v := s.stack[len(s.stack)-n:]
	s.stack = s.stack[:len(s.stack)-n]
	return v, nil
}

// popMark removes the topmost mark and the values above it and returns how
// many values there were.
func (s *scanner) popMark() (int, error) {
	if len(s.marks) == 0 {
		return 0, fmt.Errorf("%w: pickle has no mark to pop", ErrFormat)
	}
	m := s.marks[len(s.marks)-1]
	s.marks = s.marks[:len(s.marks)-1]
	n := len(s.stack) - m
	s.stack = s.stack[:m]
	return n, nil
}

// replace pops n values and pushes one opaque result.
func (s *scanner) replace(n int) error {
	if _, err := s.pop(n); err != nil {
		return err
	}
	return s.push(scanValue{})
}

func (s *scanner) put(i int) error {
	top, err := s.pop(1)
	if err != nil {
		return err
	}
	s.stack = append(s.stack, top[0])
	if _, ok := s.memo[i]; !ok && len(s.memo) >= maxMemo {
		return fmt.Errorf("%w: more than %d memo entries", ErrLimit, maxMemo)
	}
	s.memo[i] = top[0]
	return nil
}

func (s *scanner) get(i int) error {
	v, ok := s.memo[i]
	if !ok {
		return fmt.Errorf("%w: pickle reads memo slot %d before writing it", ErrFormat, i)
	}
	return s.push(v)
}

// str pushes a string. Only its first maxGlobalName bytes are kept: enough
// to check a STACK_GLOBAL name (a longer one cannot be allow-listed anyway).
func (s *scanner) str(b []byte) error {
	return s.push(scanValue{str: string(b[:min(len(b), maxGlobalName)]), isStr: true})
}

// length reads an n-byte little-endian length prefix.
func (s *scanner) length(n int) (int64, error) {
	v, err := s.uint(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(s.left) {
		return 0, s.tooLong(v)
	}
	return int64(v), nil
}

// run validates opcodes up to STOP.
func (s *scanner) run() error {
	for {
		s.ops++
		if s.ops > maxPickleOps {
			return fmt.Errorf("%w: more than %d pickle opcodes", ErrLimit, maxPickleOps)
		}
		op, err := s.byte1()
		if err != nil {
			return err
		}
		if err := s.step(op); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
}

var errStop = errors.New("STOP")

func (s *scanner) step(op byte) error {
	switch op {
	case opStop:
		if _, err := s.pop(1); err != nil {
			return err
		}
		if len(s.stack) != 0 || len(s.marks) != 0 {
			return fmt.Errorf("%w: pickle stops with values left on its stack", ErrFormat)
		}
		return errStop
	case opProto:
		p, err := s.byte1()
		if err != nil {
			return err
		}
		if p > 5 {
			return fmt.Errorf("%w: pickle protocol %d", ErrFormat, p)
		}
		return nil
	case opFrame:
		_, err := s.length(8)
		return err
	case opMark:
		if len(s.marks) >= maxMarkDepth {
			return fmt.Errorf("%w: pickle marks nested deeper than %d", ErrLimit, maxMarkDepth)
		}
		s.marks = append(s.marks, len(s.stack))
		return nil
	case opPop:
		if s.avail() > 0 {
			_, err := s.pop(1)
			return err
		}
		_, err := s.popMark()
		return err
	case opPopMark:
		_, err := s.popMark()
		return err
	case opDup:
		v, err := s.pop(1)
		if err != nil {
			return err
		}
		s.stack = append(s.stack, v[0])
		return s.push(v[0])

	case opNone, opNewTrue, opNewFalse, opEmptyDict, opEmptyList, opEmptyTuple, opEmptySet:
		return s.push(scanValue{})
	case opBinInt1:
		return s.skipPush(1)
	case opBinInt2:
		return s.skipPush(2)
	case opBinInt:
		return s.skipPush(4)
	case opBinFloat:
		return s.skipPush(8)
	case opInt, opLong, opFloat:
		if _, err := s.line(); err != nil {
			return err
		}
		return s.push(scanValue{})
	case opLong1, opLong4:
		size := 1
		if op == opLong4 {
			size = 4
		}
		n, err := s.length(size)
		if err != nil {
			return err
		}
		if n == 0 || (op == opLong4 && n > 1<<31-1) {
			return fmt.Errorf("%w: LONG opcode with %d bytes", ErrFormat, n)
		}
		return s.skipPush(n)

	case opShortBinString, opShortBinUnicode:
		return s.counted(1)
	case opBinUnicode:
		return s.counted(4)
	case opBinUnicode8:
		return s.counted(8)
	case opBinString:
		// BINSTRING's length is signed.
		b, err := s.read(4)
		if err != nil {
			return err
		}
		if b[3]&0x80 != 0 {
			return fmt.Errorf("%w: negative BINSTRING length", ErrFormat)
		}
		return s.countedN(int64(binary.LittleEndian.Uint32(b)))
	case opString:
		l, err := s.line()
		if err != nil {
			return err
		}
		if len(l) < 2 || l[0] != l[len(l)-1] || (l[0] != '\'' && l[0] != '"') {
			return fmt.Errorf("%w: unquoted STRING argument", ErrFormat)
		}
		return s.str([]byte(l[1 : len(l)-1]))
	case opUnicode:
		l, err := s.line()
		if err != nil {
			return err
		}
		return s.str([]byte(l))

	case opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		return fmt.Errorf("%w: pickle opcode 0x%02x (bytes objects) is not supported", ErrFormat, op)
	case opExt1, opExt2, opExt4, opNextBuffer, opReadOnlyBuffer, opInst, opObj:
		return fmt.Errorf("%w: pickle opcode 0x%02x is not supported", ErrFormat, op)

	case opGlobal:
		module, err := s.line()
		if err != nil {
			return err
		}
		name, err := s.line()
		if err != nil {
			return err
		}
		if _, err := lookupGlobal(module, name); err != nil {
			return err
		}
		return s.push(scanValue{})
	case opStackGlobal:
		v, err := s.pop(2)
		if err != nil {
			return err
		}
		if !v[0].isStr || !v[1].isStr {
			return fmt.Errorf("%w: STACK_GLOBAL needs two strings", ErrFormat)
		}
		if _, err := lookupGlobal(v[0].str, v[1].str); err != nil {
			return err
		}
		return s.push(scanValue{})

	case opPersID:
		if _, err := s.line(); err != nil {
			return err
		}
		return s.push(scanValue{})
	case opBinPersID, opTuple1:
		return s.replace(1)
	case opReduce, opNewObj, opTuple2:
		return s.replace(2)
	case opNewObjEx, opTuple3:
		return s.replace(3)
	case opBuild, opAppend:
		// Pop the argument, keep the object being built.
		if s.avail() < 2 {
			return fmt.Errorf("%w: pickle stack underflow", ErrFormat)
		}
		_, err := s.pop(1)
		return err
	case opSetItem:
		if s.avail() < 3 {
			return fmt.Errorf("%w: pickle stack underflow", ErrFormat)
		}
		_, err := s.pop(2)
		return err
	case opAppends, opAddItems, opSetItems:
		n, err := s.popMark()
		if err != nil {
			return err
		}
		if op == opSetItems && n%2 != 0 {
			return fmt.Errorf("%w: SETITEMS with an odd number of values", ErrFormat)
		}
		if s.avail() < 1 {
			return fmt.Errorf("%w: pickle stack underflow", ErrFormat)
		}
		return nil
	case opTuple, opList, opFrozenSet, opDict:
		n, err := s.popMark()
		if err != nil {
			return err
		}
		if op == opDict && n%2 != 0 {
			return fmt.Errorf("%w: DICT with an odd number of values", ErrFormat)
		}
		return s.push(scanValue{})

	case opPut, opGet:
		l, err := s.line()
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(l)
		if err != nil || i < 0 {
			return fmt.Errorf("%w: bad memo index %q", ErrFormat, l)
		}
		if op == opPut {
			return s.put(i)
		}
		return s.get(i)
	case opBinPut, opBinGet, opLongBinPut, opLongBinGet:
		size := 1
		if op == opLongBinPut || op == opLongBinGet {
			size = 4
		}
		i, err := s.uint(size)
		if err != nil {
			return err
		}
		if op == opBinPut || op == opLongBinPut {
			return s.put(int(i))
		}
		return s.get(int(i))
	case opMemoize:
		// gopickle, like Python, uses the number of memo entries as the index.
		return s.put(len(s.memo))
	}
	return fmt.Errorf("%w: unknown pickle opcode 0x%02x", ErrFormat, op)
}

// skipPush consumes an n-byte argument and pushes an opaque value.
func (s *scanner) skipPush(n int64) error {
	if _, err := s.read(n); err != nil {
		return err
	}
	return s.push(scanValue{})
}

// counted reads a string with a size-byte length prefix.
func (s *scanner) counted(size int) error {
	n, err := s.length(size)
	if err != nil {
		return err
	}
	return s.countedN(n)
}

func (s *scanner) countedN(n int64) error {
	b, err := s.read(n)
	if err != nil {
		return err
	}
	return s.str(b)
}

package torchfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// unpickle validates one pickle (see scanner) and executes it with gopickle,
// resolving globals through lookupGlobal and persistent ids through pl (nil:
// persistent ids are refused).
func unpickle(data []byte, pl func(pid any) (any, error)) (result any, err error) {
	// The scanner rejects every input known to make gopickle panic. A panic
	// that still escapes it must not take the calling program down with it.
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("%w: unpickler failed: %v", ErrFormat, r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = lookupGlobal
	u.PersistentLoad = pl
	v, err := u.Load()
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, ErrFormat), errors.Is(err, ErrLimit), errors.Is(err, ErrForbiddenGlobal):
		return nil, err
	}
	return nil, fmt.Errorf("%w: %w", ErrFormat, err)
}

// lookupGlobal is the allow-list of Python globals a pickle may reference. It
// returns inert Go stand-ins: nothing a pickle names is ever executed, and the
// only callables (for REDUCE) are the tensor and container constructors below.
// Any other global is refused with ErrForbiddenGlobal.
func lookupGlobal(module, name string) (any, error) {
	qual := module + "." + name
	if dt, ok := storageDtype(module, name); ok {
		return &storageType{name: qual, dtype: dt}, nil
	}
	switch qual {
	case "collections.OrderedDict":
		// gopickle resolves this one itself, to the same type.
		return &types.OrderedDictClass{}, nil
	case "__builtin__.set", "builtins.set":
		return &pyFunc{name: qual, call: newSet}, nil
	case "torch.Size":
		return &pyFunc{name: qual, call: newSize}, nil
	case "torch._utils._rebuild_tensor":
		return &pyFunc{name: qual, call: rebuildTensor}, nil
	case "torch._utils._rebuild_tensor_v2":
		return &pyFunc{name: qual, call: rebuildTensorV2}, nil
	case "torch._utils._rebuild_parameter":
		return &pyFunc{name: qual, call: rebuildParameter(3)}, nil
	case "torch._utils._rebuild_parameter_with_state":
		return &pyFunc{name: qual, call: rebuildParameter(4)}, nil
	case "torch.nn.backends.thnn._get_thnn_function_backend":
		// The `_backend` attribute of modules pickled by PyTorch 0.4.
		return &pyFunc{name: qual, call: func([]any) (any, error) { return nil, nil }}, nil
	}
	if isModuleClass(module) {
		return &pyClass{name: qual}, nil
	}
	return nil, fmt.Errorf("%w %s: only PyTorch tensors, storages, containers and glow/torch.nn module classes may be loaded", ErrForbiddenGlobal, short(qual))
}

// isModuleClass reports whether classes of a Python module may be
// instantiated: NVIDIA's glow.py (and glow_old.py) and torch.nn. Instances are
// plain attribute holders; no constructor or __setstate__ code runs.
func isModuleClass(module string) bool {
	for _, p := range []string{"glow", "glow_old", "torch.nn"} {
		if module == p || strings.HasPrefix(module, p+".") {
			return true
		}
	}
	return false
}

// storageDtype maps torch.<T>Storage and torch.cuda.<T>Storage to a dtype.
func storageDtype(module, name string) (dtype, bool) {
	if module != "torch" && module != "torch.cuda" {
		return 0, false
	}
	switch name {
	case "FloatStorage":
		return float32Type, true
	case "DoubleStorage":
		return float64Type, true
	case "HalfStorage":
		return float16Type, true
	case "BFloat16Storage":
		return bfloat16Type, true
	case "LongStorage":
		return int64Type, true
	case "IntStorage":
		return int32Type, true
	case "ShortStorage":
		return int16Type, true
	case "CharStorage":
		return int8Type, true
	case "ByteStorage":
		return uint8Type, true
	case "BoolStorage":
		return boolType, true
	}
	return 0, false
}

// storageType stands for a storage class such as torch.FloatStorage. It only
// appears inside storage persistent ids.
type storageType struct {
	name  string
	dtype dtype
}

// pyFunc is an allow-listed callable for REDUCE.
type pyFunc struct {
	name string
	call func(args []any) (any, error)
}

// Call implements types.Callable.
func (f *pyFunc) Call(args ...any) (any, error) {
	v, err := f.call(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return v, nil
}

// pyClass is an allow-listed module class (see isModuleClass).
type pyClass struct {
	name string // qualified, e.g. "glow.WaveGlow"
}

// PyNew implements types.PyNewable: NEWOBJ creates an empty instance.
func (c *pyClass) PyNew(...any) (any, error) {
	return &pyObject{class: c, attrs: make(map[string]any)}, nil
}

// pyObject is an instance of a module class: its pickled __dict__.
type pyObject struct {
	class *pyClass
	attrs map[string]any
}

// PySetState implements types.PyStateSettable: BUILD updates the instance
// __dict__ with a dict, or with a (dict, slot dict) pair.
func (o *pyObject) PySetState(state any) error {
	if t, ok := state.(*types.Tuple); ok && t.Len() == 2 {
		if err := o.update(t.Get(0)); err != nil {
			return err
		}
		return o.update(t.Get(1))
	}
	return o.update(state)
}

func (o *pyObject) update(state any) error {
	if state == nil {
		return nil
	}
	items, err := dictItems(state)
	if err != nil {
		return fmt.Errorf("%w: state of %s: %w", ErrFormat, o.class.name, err)
	}
	for _, it := range items {
		o.attrs[it.key] = it.value
	}
	return nil
}

// item is one entry of a Python dict with a string key.
type item struct {
	key   string
	value any
}

// pyEntries returns the entries of a dict or OrderedDict, in order.
func pyEntries(v any) ([]types.DictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		return *d, true
	case *types.OrderedDict:
		out := make([]types.DictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			out = append(out, types.DictEntry{Key: entry.Key, Value: entry.Value})
		}
		return out, true
	}
	return nil, false
}

// dictItems returns the entries of a dict or OrderedDict, in order. Keys must
// be strings.
func dictItems(v any) ([]item, error) {
	entries, ok := pyEntries(v)
	if !ok {
		return nil, fmt.Errorf("%s is not a dict", pyType(v))
	}
	items := make([]item, len(entries))
	for i, e := range entries {
		k, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("dict key is a %s, not a string", pyType(e.Key))
		}
		items[i] = item{k, e.Value}
	}
	return items, nil
}

// lookup returns the value for a string key of a dict or OrderedDict.
func lookup(d any, key string) (any, bool) {
	switch d := d.(type) {
	case *types.Dict:
		for _, e := range *d {
			if k, ok := e.Key.(string); ok && k == key {
				return e.Value, true
			}
		}
	case *types.OrderedDict:
		return d.Get(key)
	}
	return nil, false
}

// pyType names the Python type of an unpickled value for error messages.
// Values themselves are never formatted: they can be huge or cyclic.
func pyType(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *types.Tuple:
		return "tuple"
	case *types.List:
		return "list"
	case *types.Dict:
		return "dict"
	case *types.OrderedDict:
		return "OrderedDict"
	case *types.Set, *types.FrozenSet:
		return "set"
	case *tensorRef:
		return "tensor"
	case *storage:
		return "storage"
	case *pyObject:
		return v.class.name
	case *pyClass:
		return "class " + v.name
	case *pyFunc:
		return "function " + v.name
	case *storageType:
		return "class " + v.name
	}
	return fmt.Sprintf("%T", v)
}

// sequence returns the items of a tuple or list.
func sequence(v any) ([]any, bool) {
	switch s := v.(type) {
	case *types.Tuple:
		return *s, true
	case *types.List:
		return *s, true
	}
	return nil, false
}

// newSet implements set(iterable) for the pickled sets of module attributes.
func newSet(args []any) (any, error) {
	switch len(args) {
	case 0:
		return types.NewSet(), nil
	case 1:
		items, ok := sequence(args[0])
		if !ok {
			return nil, fmt.Errorf("%w: set of a %s", ErrFormat, pyType(args[0]))
		}
		return types.NewSetFromSlice(items), nil
	}
	return nil, fmt.Errorf("%w: set with %d arguments", ErrFormat, len(args))
}

// newSize implements torch.Size(sequence) as a tuple.
func newSize(args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("%w: torch.Size with %d arguments", ErrFormat, len(args))
	}
	items, ok := sequence(args[0])
	if !ok {
		return nil, fmt.Errorf("%w: torch.Size of a %s", ErrFormat, pyType(args[0]))
	}
	return types.NewTupleFromSlice(items), nil
}

// rebuildTensorV2 implements torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensorV2(args []any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("%w: %d arguments", ErrFormat, len(args))
	}
	if _, ok := args[4].(bool); !ok {
		return nil, fmt.Errorf("%w: requires_grad is a %s", ErrFormat, pyType(args[4]))
	}
	return rebuildTensor(args[:4])
}

// rebuildTensor implements torch._utils._rebuild_tensor(storage,
// storage_offset, size, stride).
func rebuildTensor(args []any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("%w: %d arguments", ErrFormat, len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("%w: storage argument is a %s", ErrFormat, pyType(args[0]))
	}
	offset, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("%w: storage offset is a %s", ErrFormat, pyType(args[1]))
	}
	shape, err := ints(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := ints(args[3], "stride")
	if err != nil {
		return nil, err
	}
	return newTensorRef(st, offset, shape, stride)
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks) (n = 3) and
// _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)
// (n = 4): a parameter is its tensor.
func rebuildParameter(n int) func([]any) (any, error) {
	return func(args []any) (any, error) {
		if len(args) != n {
			return nil, fmt.Errorf("%w: %d arguments", ErrFormat, len(args))
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%w: data is a %s", ErrFormat, pyType(args[0]))
		}
		return t, nil
	}
}

// ints converts a tuple or list of ints.
func ints(v any, what string) ([]int, error) {
	items, ok := sequence(v)
	if !ok {
		return nil, fmt.Errorf("%w: %s is a %s", ErrFormat, what, pyType(v))
	}
	out := make([]int, len(items))
	for i, x := range items {
		n, ok := x.(int)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d] is a %s", ErrFormat, what, i, pyType(x))
		}
		out[i] = n
	}
	return out, nil
}

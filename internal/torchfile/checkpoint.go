package torchfile

import (
	"fmt"
	"io"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// maxModuleDepth bounds the nesting of modules (WaveGlow's is 4).
const maxModuleDepth = 64

// load reads a checkpoint (see Load).
func load(r io.ReaderAt, size int64) (*Checkpoint, error) {
	f, err := open(r, size)
	if err != nil {
		return nil, err
	}
	b := &builder{
		f:           f,
		ck:          &Checkpoint{Tensors: make(map[string]Tensor), Attributes: make(map[string]any)},
		seenModules: make(map[*pyObject]bool),
		seenParams:  make(map[*tensorRef]bool),
	}
	if err := b.root(f.root); err != nil {
		return nil, err
	}
	return b.ck, nil
}

// builder collects a Checkpoint from the unpickled objects.
type builder struct {
	f           *file
	ck          *Checkpoint
	seenModules map[*pyObject]bool
	seenParams  map[*tensorRef]bool
	params      []string // parameter names in optimizer order
}

// isDict reports whether v is a dict or an OrderedDict.
func isDict(v any) bool {
	switch v.(type) {
	case *types.Dict, *types.OrderedDict:
		return true
	}
	return false
}

// root dispatches on the object torch.save wrote: a module, a checkpoint
// dict with a "model" or "state_dict" entry, or a state dict.
func (b *builder) root(v any) error {
	if m, ok := v.(*pyObject); ok {
		return b.module("", m, 0)
	}
	if !isDict(v) {
		return fmt.Errorf("%w: file holds a %s, not a model, state dict or checkpoint", ErrFormat, pyType(v))
	}
	model, _ := lookup(v, "model")
	stateDict, _ := lookup(v, "state_dict")
	_, modelIsTensor := model.(*tensorRef)
	var err error
	switch {
	case modelIsTensor || model == nil && !isDict(stateDict):
		// A plain state dict (possibly with a parameter named "model").
		return b.stateDict(v)
	case isDict(model):
		err = b.stateDict(model)
	case isDict(stateDict) && model == nil:
		err = b.stateDict(stateDict)
	default:
		m, ok := model.(*pyObject)
		if !ok {
			return fmt.Errorf("%w: model is a %s", ErrFormat, pyType(model))
		}
		err = b.module("", m, 0)
	}
	if err != nil {
		return err
	}
	return b.extras(v)
}

// extras reads the training entries of NVIDIA's checkpoints.
func (b *builder) extras(d any) error {
	if v, ok := lookup(d, "iteration"); ok && v != nil {
		n, ok := v.(int)
		if !ok {
			return fmt.Errorf("%w: iteration is a %s", ErrFormat, pyType(v))
		}
		b.ck.Iteration = n
	}
	if v, ok := lookup(d, "learning_rate"); ok && v != nil {
		x, ok := pyNumber(v)
		if !ok {
			return fmt.Errorf("%w: learning_rate is a %s", ErrFormat, pyType(v))
		}
		b.ck.LearningRate = x
	}
	if v, ok := lookup(d, "optimizer"); ok && v != nil {
		opt, err := b.optimizer(v)
		if err != nil {
			return fmt.Errorf("optimizer: %w", err)
		}
		b.ck.Optimizer = opt
	}
	return nil
}

// tensor converts a tensor of the file.
func (b *builder) tensor(t *tensorRef) (Tensor, error) {
	return convert(t, b.f.order, b.f.budget)
}

// add records a named tensor; parameters also enter the optimizer order
// (once per tensor object, like named_parameters()).
func (b *builder) add(name string, v any, param bool) error {
	t, ok := v.(*tensorRef)
	if !ok {
		return fmt.Errorf("%w: %s is a %s, not a tensor", ErrFormat, short(name), pyType(v))
	}
	if _, dup := b.ck.Tensors[name]; dup {
		return fmt.Errorf("%w: tensor name %s repeated", ErrFormat, short(name))
	}
	x, err := b.tensor(t)
	if err != nil {
		return fmt.Errorf("%s: %w", short(name), err)
	}
	b.ck.Names = append(b.ck.Names, name)
	b.ck.Tensors[name] = x
	if param && !b.seenParams[t] {
		b.seenParams[t] = true
		b.params = append(b.params, name)
	}
	return nil
}

// stateDict reads a name -> tensor dict; every entry counts as a parameter.
func (b *builder) stateDict(d any) error {
	items, err := dictItems(d)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	for _, it := range items {
		if err := b.add(it.key, it.value, true); err != nil {
			return err
		}
	}
	return nil
}

// module walks a torch.nn.Module: its _parameters, its persistent _buffers,
// then its _modules, recursively (each module once, like named_modules()).
func (b *builder) module(prefix string, m *pyObject, depth int) error {
	if depth > maxModuleDepth {
		return fmt.Errorf("%w: modules nested deeper than %d", ErrLimit, maxModuleDepth)
	}
	if b.seenModules[m] {
		return nil
	}
	b.seenModules[m] = true
	for name, v := range m.attrs {
		if strings.HasPrefix(name, "_") {
			continue
		}
		if a, ok := attribute(v); ok {
			b.ck.Attributes[prefix+name] = a
		}
	}
	part := func(name string) ([]item, error) {
		v, ok := m.attrs[name]
		if !ok {
			return nil, fmt.Errorf("%w: module %s (%s) has no %s", ErrFormat, short(strings.TrimSuffix(prefix, ".")), m.class.name, name)
		}
		items, err := dictItems(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s%s: %w", ErrFormat, short(prefix), name, err)
		}
		return items, nil
	}
	params, err := part("_parameters")
	if err != nil {
		return err
	}
	for _, it := range params {
		if it.value == nil {
			continue
		}
		if err := b.add(prefix+it.key, it.value, true); err != nil {
			return err
		}
	}
	buffers, err := part("_buffers")
	if err != nil {
		return err
	}
	nonPersistent, _ := m.attrs["_non_persistent_buffers_set"].(*types.Set)
	for _, it := range buffers {
		if it.value == nil || (nonPersistent != nil && nonPersistent.Has(it.key)) {
			continue
		}
		if err := b.add(prefix+it.key, it.value, false); err != nil {
			return err
		}
	}
	children, err := part("_modules")
	if err != nil {
		return err
	}
	for _, it := range children {
		if it.value == nil {
			continue
		}
		child, ok := it.value.(*pyObject)
		if !ok {
			return fmt.Errorf("%w: submodule %s%s is a %s", ErrFormat, short(prefix), short(it.key), pyType(it.value))
		}
		if err := b.module(prefix+it.key+".", child, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// attribute converts a module attribute worth reporting.
func attribute(v any) (any, bool) {
	switch v := v.(type) {
	case int, float64, bool, string:
		return v, true
	case *types.Tuple:
		if n, err := ints(v, "attribute"); err == nil {
			return n, true
		}
	}
	return nil, false
}

// pyNumber converts a Python int or float.
func pyNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// adamHyper holds the hyperparameters of one Adam parameter group.
type adamHyper struct {
	lr, beta1, beta2, eps, weightDecay float64
	amsgrad                            bool
}

// adamGroup reads a parameter group; ok is false if it is not Adam's.
func adamGroup(g any) (h adamHyper, ok bool, err error) {
	betas, isAdam := lookup(g, "betas")
	if !isAdam {
		return h, false, nil
	}
	number := func(key string) (float64, error) {
		v, found := lookup(g, key)
		x, isNum := pyNumber(v)
		if !found || !isNum {
			return 0, fmt.Errorf("%w: param group %s is a %s", ErrFormat, key, pyType(v))
		}
		return x, nil
	}
	if h.lr, err = number("lr"); err != nil {
		return h, true, err
	}
	if h.eps, err = number("eps"); err != nil {
		return h, true, err
	}
	if h.weightDecay, err = number("weight_decay"); err != nil {
		return h, true, err
	}
	bs, isSeq := sequence(betas)
	if !isSeq || len(bs) != 2 {
		return h, true, fmt.Errorf("%w: betas is a %s", ErrFormat, pyType(betas))
	}
	var ok1, ok2 bool
	h.beta1, ok1 = pyNumber(bs[0])
	h.beta2, ok2 = pyNumber(bs[1])
	if !ok1 || !ok2 {
		return h, true, fmt.Errorf("%w: betas are not numbers", ErrFormat)
	}
	if v, found := lookup(g, "amsgrad"); found {
		h.amsgrad, _ = v.(bool)
	}
	return h, true, nil
}

// optimizer reads an optimizer state_dict: {'state': {key: {'step',
// 'exp_avg', 'exp_avg_sq'}}, 'param_groups': [{..., 'params': [key...]}]}.
// The keys are parameter positions (or id(param) in old PyTorch); their
// order across the groups is the parameter order.
func (b *builder) optimizer(v any) (*AdamState, error) {
	state, ok1 := lookup(v, "state")
	groupsObj, ok2 := lookup(v, "param_groups")
	groups, ok3 := sequence(groupsObj)
	if !ok1 || !ok2 || !ok3 || len(groups) == 0 {
		return nil, fmt.Errorf("%w: not an optimizer state dict", ErrFormat)
	}
	var (
		hyper adamHyper
		keys  []int
	)
	for i, g := range groups {
		h, adam, err := adamGroup(g)
		if err != nil {
			return nil, err
		}
		if !adam {
			return nil, nil
		}
		if i > 0 && h != hyper {
			return nil, fmt.Errorf("%w: parameter groups with different hyperparameters", ErrFormat)
		}
		hyper = h
		ps, _ := lookup(g, "params")
		ids, err := ints(ps, "params")
		if err != nil {
			return nil, err
		}
		keys = append(keys, ids...)
	}
	if len(keys) != len(b.params) {
		return nil, fmt.Errorf("%w: optimizer has %d parameters, the model %d", ErrFormat, len(keys), len(b.params))
	}
	names := make(map[int]string, len(keys))
	for i, k := range keys {
		if _, dup := names[k]; dup {
			return nil, fmt.Errorf("%w: parameter %d listed twice", ErrFormat, k)
		}
		names[k] = b.params[i]
	}
	opt := &AdamState{
		Step:        make(map[string]float64),
		ExpAvg:      make(map[string]Tensor),
		ExpAvgSq:    make(map[string]Tensor),
		LR:          hyper.lr,
		Beta1:       hyper.beta1,
		Beta2:       hyper.beta2,
		Eps:         hyper.eps,
		WeightDecay: hyper.weightDecay,
		AMSGrad:     hyper.amsgrad,
	}
	entries, err := intDictItems(state)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := names[e.key]
		if !ok {
			return nil, fmt.Errorf("%w: state of unknown parameter %d", ErrFormat, e.key)
		}
		if _, dup := opt.Step[name]; dup {
			return nil, fmt.Errorf("%w: state of parameter %d repeated", ErrFormat, e.key)
		}
		if err := b.adamParam(opt, name, e.value); err != nil {
			return nil, fmt.Errorf("%s: %w", short(name), err)
		}
	}
	return opt, nil
}

// adamParam reads the Adam state {'step', 'exp_avg', 'exp_avg_sq'} of one
// parameter.
func (b *builder) adamParam(opt *AdamState, name string, s any) error {
	step, _ := lookup(s, "step")
	switch v := step.(type) {
	case *tensorRef:
		t, err := b.tensor(v)
		if err != nil {
			return err
		}
		if len(t.Data) != 1 {
			return fmt.Errorf("%w: step tensor of shape %v", ErrFormat, t.Shape)
		}
		opt.Step[name] = float64(t.Data[0])
	default:
		x, ok := pyNumber(step)
		if !ok {
			return fmt.Errorf("%w: step is a %s", ErrFormat, pyType(step))
		}
		opt.Step[name] = x
	}
	for _, m := range []struct {
		key string
		dst map[string]Tensor
	}{{"exp_avg", opt.ExpAvg}, {"exp_avg_sq", opt.ExpAvgSq}} {
		v, _ := lookup(s, m.key)
		t, ok := v.(*tensorRef)
		if !ok {
			return fmt.Errorf("%w: %s is a %s", ErrFormat, m.key, pyType(v))
		}
		x, err := b.tensor(t)
		if err != nil {
			return fmt.Errorf("%s: %w", m.key, err)
		}
		m.dst[name] = x
	}
	return nil
}

// intItem is one entry of a Python dict with an int key.
type intItem struct {
	key   int
	value any
}

// intDictItems returns the entries of a dict or OrderedDict with int keys.
func intDictItems(v any) ([]intItem, error) {
	entries, ok := pyEntries(v)
	if !ok {
		return nil, fmt.Errorf("%w: optimizer state is a %s", ErrFormat, pyType(v))
	}
	out := make([]intItem, len(entries))
	for i, e := range entries {
		n, ok := e.Key.(int)
		if !ok {
			return nil, fmt.Errorf("%w: optimizer state key is a %s", ErrFormat, pyType(e.Key))
		}
		out[i] = intItem{n, e.Value}
	}
	return out, nil
}
